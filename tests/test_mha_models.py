"""The seed-003 designs (as written and corrected) and the baselines of each module in isolation."""

from __future__ import annotations

import warnings

import pytest
import torch

from course_utils.capture import capture_attention
from course_utils.masks import padding_mask
from course_utils.metrics import future_attention
from course_utils.mha_models import (
    LSTMAttention,
    LSTMAttentionFFN,
    LSTMAttentionLM,
    SeedLSTMWithAttention,
    SeedLSTMWithAttentionAndFFN,
    SeedLSTMWithAttentionEmbed,
)


def test_seed_models_give_the_article_shapes():
    torch.manual_seed(0)
    x = torch.randn(4, 20, 10)
    assert SeedLSTMWithAttention(10, 64, 2, 4)(x).shape == (4, 20, 10)
    assert SeedLSTMWithAttentionEmbed(1000, 64, 128, 2, 4)(
        torch.randint(0, 1000, (4, 20))
    ).shape == (4, 20, 1000)
    assert SeedLSTMWithAttentionAndFFN(10, 64, 2, 4, ffn_hidden_size=128)(x).shape == (4, 20, 10)


def test_seed_model_with_one_layer_warns_and_corrected_one_does_not():
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        SeedLSTMWithAttention(3, 8, 1, 2, dropout=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = LSTMAttention(3, 8, num_layers=1, num_heads=2, dropout=0.2)
    assert model.lstm.dropout == 0.0 and model.attention.dropout == 0.2
    assert LSTMAttention(3, 8, num_layers=2, num_heads=2, dropout=0.2).lstm.dropout == 0.2


@pytest.mark.parametrize("causal", [True, False])
def test_lm_reads_the_future_only_without_causal_mask(causal):
    torch.manual_seed(0)
    model = LSTMAttentionLM(11, 6, 8, num_heads=2, causal=causal).eval()
    tokens = torch.randint(0, 11, (3, 9))
    changed = tokens.clone()
    changed[:, 5:] = (changed[:, 5:] + 1) % 11
    with torch.no_grad(), capture_attention(model) as cap:
        moved = (model(tokens)[:, :5] - model(changed)[:, :5]).abs().max().item()
    share = future_attention(cap["attention"].weights)
    if causal:
        assert moved < 1e-6 and torch.all(share == 0)
    else:
        assert moved > 1e-4 and torch.all(share > 0)


@pytest.mark.parametrize("cls", [LSTMAttention, LSTMAttentionFFN])
def test_key_padding_mask_makes_outputs_independent_of_padding(cls):
    torch.manual_seed(0)
    model = cls(3, 8, num_heads=2).eval()
    x = torch.randn(1, 5, 3)
    pad = lambda n: torch.cat([x, torch.zeros(1, n - 5, 3)], dim=1)  # noqa: E731
    with torch.no_grad():
        short = model(pad(7), padding_mask(torch.tensor([5]), 7))[:, :5]
        long = model(pad(15), padding_mask(torch.tensor([5]), 15))[:, :5]
        short_nomask, long_nomask = model(pad(7))[:, :5], model(pad(15))[:, :5]
    torch.testing.assert_close(short, long)
    assert (short_nomask - long_nomask).abs().max() > 1e-4


def test_corrected_models_shapes_and_errors():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 3)
    assert LSTMAttention(3, 8, output_size=1)(x).shape == (2, 6, 1)
    assert LSTMAttentionFFN(3, 8, output_size=2, ffn_hidden_size=5)(x).shape == (2, 6, 2)
    assert LSTMAttentionLM(7, 4, 8)(torch.randint(0, 7, (2, 6))).shape == (2, 6, 7)
    with pytest.raises(ValueError, match=r"expected x of shape \(batch, seq_len, input_size\)"):
        LSTMAttention(3, 8)(torch.randn(2, 6, 4))
    with pytest.raises(ValueError, match="must be divisible by num_heads"):
        LSTMAttention(3, 10, num_heads=4)
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(batch, seq_len\)"):
        LSTMAttention(3, 8)(x, torch.zeros(2, 5, dtype=torch.bool))
    with pytest.raises(TypeError, match="must be boolean"):
        LSTMAttention(3, 8)(x, torch.zeros(2, 6))
    with pytest.raises(ValueError, match="dtype int64"):
        LSTMAttentionLM(7, 4, 8)(torch.randn(2, 6))


# --- each module in isolation, and the controls for reading weights --------------------------------


def test_isolation_baselines_shapes_and_permutation_equivariance():
    from course_utils.mha_models import AttentionOnly, LSTMOnly

    torch.manual_seed(0)
    x = torch.randn(3, 6, 4)
    assert LSTMOnly(4, 8, output_size=1)(x).shape == (3, 6, 1)
    bi = LSTMOnly(4, 8, bidirectional=True, output_size=2)
    assert bi(x).shape == (3, 6, 2) and bi.lstm.bidirectional
    plain = AttentionOnly(4, 8, 2, output_size=1).eval()
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    with torch.no_grad():  # no positions: shuffling the steps shuffles the outputs the same way
        torch.testing.assert_close(plain(x[:, perm]), plain(x)[:, perm])
    positioned = AttentionOnly(4, 8, 2, max_len=6, output_size=1).eval()
    with torch.no_grad():
        assert not torch.allclose(positioned(x[:, perm]), positioned(x)[:, perm], atol=1e-4)
    with pytest.raises(ValueError, match="exceeds max_len"):
        positioned(torch.randn(1, 7, 4))
    with pytest.raises(ValueError, match=r"\(\*, \*, 4\)"):
        LSTMOnly(4, 8)(torch.randn(2, 3, 5))
