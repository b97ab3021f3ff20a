"""The seed-003 designs (as written and corrected), their masks and their tasks."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from course_utils.capture import capture_attention
from course_utils.mha_models import (
    LSTMAttention,
    LSTMAttentionFFN,
    LSTMAttentionLM,
    SeedLSTMWithAttention,
    SeedLSTMWithAttentionAndFFN,
    SeedLSTMWithAttentionEmbed,
    causal_mask,
    duplicate_task,
    future_attention,
    marked_value_task,
    masked_mse,
    next_token_floor,
    next_token_task,
    padding_mask,
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


def test_causal_mask_and_padding_mask_values():
    assert causal_mask(3).tolist() == [[False, True, True], [False, False, True], [False] * 3]
    assert padding_mask(torch.tensor([1, 3]), 4).tolist() == [
        [False, True, True, True],
        [False, False, False, True],
    ]
    assert padding_mask(torch.tensor([2, 3])).shape == (2, 3)
    with pytest.raises(ValueError, match="positive int"):
        causal_mask(0)
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, seq_len=2\]"):
        padding_mask(torch.tensor([3]), 2)


@pytest.mark.parametrize("causal", [True, False])
def test_lm_reads_the_future_only_without_causal_mask(causal):
    torch.manual_seed(0)
    model = LSTMAttentionLM(11, 6, 8, num_heads=2, causal=causal).eval()
    tokens = torch.randint(0, 11, (3, 9))
    changed = tokens.clone()
    changed[:, 5:] = (changed[:, 5:] + 1) % 11
    with torch.no_grad(), capture_attention(model) as cap:
        moved = (model(tokens)[:, :5] - model(changed)[:, :5]).abs().max().item()
    share = future_attention(cap["attention"])
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


def test_marked_value_task():
    x, y, lengths = marked_value_task(50, 10, min_len=4, seed=3)
    assert x.shape == (50, 10, 2) and y.shape == (50, 10) and lengths.shape == (50,)
    pad = padding_mask(lengths, 10)
    assert torch.isnan(y[pad]).all() and not torch.isnan(y[~pad]).any()
    assert torch.equal(x[:, :, 1].sum(dim=1), torch.ones(50))  # exactly one marker
    marked = x[:, :, 1].argmax(dim=1)
    assert torch.all(marked < lengths)  # the marker sits on a real step
    torch.testing.assert_close(y[:, 0], x[torch.arange(50), marked, 0])
    assert torch.equal(x[pad], torch.zeros_like(x[pad]))
    x2, _, _ = marked_value_task(50, 10, min_len=4, seed=3)
    assert torch.equal(x, x2)


def test_next_token_task_and_its_floor():
    inputs, targets = next_token_task(40, 9, 7, seed=1)
    assert inputs.shape == targets.shape == (40, 9)
    assert torch.equal(inputs[:, 1:], targets[:, :-1])
    seq = torch.cat([inputs, targets[:, -1:]], dim=1)  # (40, 10) s_0 .. s_9
    assert torch.equal(seq[:, 1::2], (seq[:, 0::2] + 1) % 7)
    assert next_token_floor(9, 7) == pytest.approx(4 * math.log(7) / 9)
    assert next_token_floor(20, 16) == pytest.approx(0.5 * math.log(16))


def test_duplicate_task_labels_match_brute_force():
    x, y, tokens = duplicate_task(30, 6, 4, seed=2)
    assert x.shape == (30, 6, 4) and torch.equal(x.argmax(-1), tokens)
    for b in range(30):
        row = tokens[b].tolist()
        assert y[b].tolist() == [float(row.count(t) > 1) for t in row]


def test_masked_mse_ignores_nan_and_checks_shapes():
    targets = torch.tensor([[1.0, float("nan")], [2.0, 3.0]])
    outputs = torch.tensor([[[2.0], [100.0]], [[2.0], [5.0]]])  # (B, T, 1)
    assert masked_mse(outputs, targets).item() == pytest.approx((1 + 0 + 4) / 3)
    with pytest.raises(ValueError, match="differ"):
        masked_mse(torch.zeros(2, 3), targets)


def test_future_attention():
    uniform = torch.full((4, 4), 0.25)
    assert future_attention(uniform).item() == pytest.approx((0.75 + 0.5 + 0.25 + 0) / 4)
    assert future_attention(torch.eye(4)).item() == 0
    with pytest.raises(ValueError, match="square"):
        future_attention(torch.zeros(3, 4))


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


def test_uniform_attention_and_head_ablation_copies():
    from course_utils.mha_models import with_uniform_attention, without_head

    torch.manual_seed(0)
    model = LSTMAttentionFFN(4, hidden_size=8, num_heads=2, output_size=1).eval()
    x = torch.randn(2, 5, 4)
    pad = padding_mask(torch.tensor([5, 3]), 5)
    with torch.no_grad():
        before = model(x, pad)
        uniform = with_uniform_attention(model)
        with capture_attention(uniform) as cap:
            uniform(x, pad)
    w = cap["attention"]  # (B, H, T, T)
    torch.testing.assert_close(w[0], torch.full((2, 5, 5), 0.2))
    torch.testing.assert_close(w[1, :, :, :3], torch.full((2, 5, 3), 1 / 3))
    with torch.no_grad():
        assert torch.equal(model(x, pad), before)  # the original is untouched
        ablated = without_head(model, 1)
        cols = ablated.attention.out_proj.weight[:, 4:]
        assert (cols == 0).all() and (ablated.attention.out_proj.weight[:, :4] != 0).any()
        assert not torch.allclose(ablated(x, pad), before)
    with pytest.raises(ValueError, match="head must lie in"):
        without_head(model, 2)
    with pytest.raises(ValueError, match="no nn.MultiheadAttention"):
        with_uniform_attention(torch.nn.Linear(2, 2))


def test_runs_fast_path_measures_the_fused_kernel():
    from course_utils.mha_models import runs_fast_path

    h = torch.randn(2, 5, 8)
    first = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    second = torch.nn.MultiheadAttention(8, 2, batch_first=False).eval()
    assert runs_fast_path(lambda t: first(t, t, t), h)
    assert not runs_fast_path(lambda t: second(t, t, t), h.transpose(0, 1))
    assert not runs_fast_path(lambda t: first.train()(t, t, t), h)
    assert torch._native_multi_head_attention.__name__ == "_native_multi_head_attention"


def test_marked_value_task_mean_target_keeps_the_inputs():
    x, y, lengths = marked_value_task(40, 8, min_len=3, seed=5)
    x_mean, y_mean, lengths_mean = marked_value_task(40, 8, min_len=3, target="mean", seed=5)
    assert torch.equal(x, x_mean) and torch.equal(lengths, lengths_mean)  # same inputs, new target
    pad = padding_mask(lengths, 8)
    expected = x[:, :, 0].sum(dim=1) / lengths
    torch.testing.assert_close(y_mean[:, 0], expected)
    assert torch.isnan(y_mean[pad]).all()
    with pytest.raises(ValueError, match="target must be"):
        marked_value_task(4, 8, target="sum")


def test_marked_token_task_targets_the_token_after_the_marker():
    from course_utils.mha_models import marked_token_task

    x, y, tokens = marked_token_task(60, 7, 5, seed=2)
    assert x.shape == (60, 7, 6) and y.shape == (60, 7) and y.dtype == torch.long
    marked = x[:, :, -1].argmax(dim=1)
    assert torch.equal(x[:, :, -1].sum(dim=1), torch.ones(60)) and (marked < 6).all()
    assert torch.equal(y[:, 0], tokens[torch.arange(60), marked + 1])
    assert (y == y[:, :1]).all()  # every step names the same token
    assert torch.equal(x[:, :, :-1].argmax(dim=-1), tokens)
    xs, ys, toks = marked_token_task(60, 7, 5, at_start=True, seed=2)
    assert (xs[:, 0, -1] == 1).all() and torch.equal(ys[:, 0], toks[:, 0])
    with pytest.raises(ValueError, match="offset"):
        marked_token_task(4, 5, 3, offset=5)


def test_freeze_uniform_attention_stays_uniform_through_training():
    from course_utils.mha_models import freeze_uniform_attention
    from course_utils.training import train

    torch.manual_seed(0)
    model = freeze_uniform_attention(LSTMAttention(2, 8, num_heads=2, output_size=1))
    x, y, lengths = marked_value_task(60, 6, min_len=4, seed=0)
    pad = padding_mask(lengths, 6)
    before = model.lstm.weight_ih_l0.detach().clone()
    train(model, (x, pad, y), loss_fn=masked_mse, epochs=2, lr=1e-2, batch_size=20, progress=False)
    attention = model.attention
    assert (attention.in_proj_weight[:8] == 0).all() and (attention.in_proj_bias[:8] == 0).all()
    assert not torch.equal(model.lstm.weight_ih_l0, before)  # the rest of the model learned
    with torch.no_grad(), capture_attention(model) as cap:
        model(x[:3], pad[:3])
    w = cap["attention"]  # (B, H, T, T)
    real = (~pad[:3]).float()
    expected = (real / real.sum(dim=1, keepdim=True))[:, None, None, :].expand_as(w)
    torch.testing.assert_close(w, expected)


def test_fused_kernel_calls_counts_and_restores():
    from course_utils.mha_models import fused_kernel_calls

    originals = (
        torch._VF.lstm,
        torch._native_multi_head_attention,
        torch.nn.functional.scaled_dot_product_attention,
    )
    h = torch.randn(2, 5, 8)
    lstm = torch.nn.LSTM(8, 8, batch_first=True)
    assert fused_kernel_calls(lstm, h)["lstm"] == 1
    assert fused_kernel_calls(lstm.train(), h, grad=True)["lstm"] == 1
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    assert fused_kernel_calls(lambda t: mha(t, t, t), h)["native MHA"] == 1
    assert sum(fused_kernel_calls(lambda t: mha.train()(t, t, t), h, grad=True).values()) == 0
    sdpa = fused_kernel_calls(lambda t: mha(t, t, t, need_weights=False), h, grad=True)
    assert sdpa["SDPA"] == 1  # the slow path without weights uses the fused attention
    assert (
        torch._VF.lstm,
        torch._native_multi_head_attention,
        torch.nn.functional.scaled_dot_product_attention,
    ) == originals


def test_task_noise_keeps_the_inputs_and_sets_a_known_floor():
    from course_utils.mha_models import marked_token_task

    x, y, lengths = marked_value_task(4000, 8, min_len=3, target="mean", seed=5)
    x_n, y_n, lengths_n = marked_value_task(4000, 8, min_len=3, target="mean", noise=0.1, seed=5)
    assert torch.equal(x, x_n) and torch.equal(lengths, lengths_n)
    residual = (y_n - y)[:, 0]
    assert (y_n - y).nan_to_num(0.0).eq(residual[:, None]).logical_or(torch.isnan(y)).all()
    assert abs(residual.std().item() - 0.1) < 0.01  # floor MSE = noise ** 2
    with pytest.raises(ValueError, match="noise"):
        marked_value_task(4, 8, noise=-0.1)
    xs, ys, toks = marked_token_task(4000, 6, 8, at_start=True, seed=3)
    xn, yn, tokn = marked_token_task(4000, 6, 8, at_start=True, label_noise=0.3, seed=3)
    assert torch.equal(xs, xn) and torch.equal(toks, tokn)
    assert (yn == yn[:, :1]).all()  # still one label per sequence
    bayes = 1 - 0.3 * 7 / 8
    assert abs((yn[:, 0] == ys[:, 0]).float().mean().item() - bayes) < 0.02
    assert torch.equal(
        marked_token_task(50, 6, 8, label_noise=0.0, seed=3)[1],
        marked_token_task(50, 6, 8, seed=3)[1],
    )
    with pytest.raises(ValueError, match="label_noise"):
        marked_token_task(4, 6, 8, label_noise=1.5)


def test_counted_cost_counts_products_in_either_layout_and_packing_cuts_them():
    import copy

    from torch import nn

    from course_utils.mha_models import counted_cost

    torch.manual_seed(0)
    x = torch.randn(4, 6, 10)
    model = SeedLSTMWithAttention(10, 16, 1, 2, dropout=0.0)
    time_major = copy.deepcopy(model)
    time_major.lstm.batch_first = time_major.attention.batch_first = False
    b, t, e, i = 4, 6, 16, 10
    lstm = 4 * e * (i + e) * b * t
    attention = 4 * b * t * e * e + 2 * b * t * t * e
    head = b * t * e * i
    for grad in (False, True):  # eval + no grad takes the fused fast path only with batch_first
        first = counted_cost(model.train(grad), x, grad=grad)
        second = counted_cost(time_major.train(grad), x.transpose(0, 1), grad=grad)
        assert first["multiply-adds"] == second["multiply-adds"]
    assert counted_cost(model.eval(), x)["multiply-adds"] == lstm + attention + head
    lengths = torch.tensor([6, 5, 3, 2])
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True)
    assert counted_cost(model.lstm, packed)["multiply-adds"] == 4 * e * (i + e) * int(lengths.sum())
    assert counted_cost(model.lstm, x)["multiply-adds"] == lstm
    assert counted_cost(lambda v: v.t().contiguous(), torch.ones(3, 5))["copied"] == 15
