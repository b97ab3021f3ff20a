"""Tests of course_utils.bert_lstm: seed-000 strategies, masks, and the seed's 2-D LSTM call."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.bert_lstm import (
    ClsLSTM,
    MeanPoolLSTM,
    TokenLSTM,
    seed_example1,
)

H = 6


def batch(pad_to: int = 7, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Token states (3, pad_to, H) with lengths 5, 2, 4; padding holds junk."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, pad_to, H, generator=g)
    mask = (torch.arange(pad_to).unsqueeze(0) < torch.tensor([[5], [2], [4]])).long()
    x[mask == 0] = 7.0  # junk, as BERT's [PAD] states would be
    return x, mask


def test_token_lstm_equals_two_nn_lstms_run_on_each_sentence_alone():
    torch.manual_seed(0)
    model = TokenLSTM(H, (5, 4)).eval()
    x, mask = batch()
    with torch.no_grad():
        logits = model(x, mask)
        for i in range(3):
            n = int(mask[i].sum())
            seq, _ = model.lstm1(x[i : i + 1, :n])  # (1, n, 5): the sentence without padding
            _, (h, _) = model.lstm2(seq)
            torch.testing.assert_close(logits[i], model.head(h[-1])[0], atol=1e-6, rtol=1e-5)
    assert logits.shape == (3, 2)


def test_masked_models_do_not_depend_on_padding_length_but_seed_versions_do():
    torch.manual_seed(0)
    x, mask = batch(7)
    x_long = torch.cat([x, torch.full((3, 5, H), 7.0)], dim=1)  # (3, 12, H): more padding
    mask_long = torch.cat([mask, torch.zeros(3, 5, dtype=torch.long)], dim=1)
    for cls in (TokenLSTM, MeanPoolLSTM):
        model = cls(H).eval()
        with torch.no_grad():
            torch.testing.assert_close(model(x, mask), model(x_long, mask_long))
            model.use_mask = False
            assert (model(x, mask) - model(x_long, mask_long)).abs().max() > 1e-4


def test_cls_lstm_adds_the_time_axis_and_refuses_3d_input():
    torch.manual_seed(0)
    model = ClsLSTM(H, 4).eval()
    v = torch.randn(5, H)
    with torch.no_grad():
        out = model(v)
        _, (h, _) = model.lstm(v.unsqueeze(1))
    torch.testing.assert_close(out, model.head(h[-1]))
    with pytest.raises(ValueError, match=r"shape \(N, H\)"):
        model(torch.randn(5, 3, H))


def test_token_models_explain_bad_shapes():
    x, mask = batch()
    with pytest.raises(ValueError, match=r"\(N, T, H\) = \(\*, \*, 6\)"):
        TokenLSTM(H)(x[..., :4], mask)
    with pytest.raises(ValueError, match="Encoded.attention_mask"):
        MeanPoolLSTM(H)(x, mask[:, :4])


def test_seed_example1_reads_the_batch_as_time():
    torch.manual_seed(0)
    lstm = nn.LSTM(H, 3)
    v = torch.randn(4, H)
    with torch.no_grad():
        out = seed_example1(v, lstm)
        alone = seed_example1(v[2:3], lstm)
    assert out.shape == (4, 3)
    torch.testing.assert_close(out[0], seed_example1(v[0:1], lstm)[0])  # row 0: no past
    assert (out[2] - alone[0]).abs().max() > 1e-4  # row 2 depends on rows 0 and 1
    with pytest.raises(ValueError, match="2-D pooler output"):
        seed_example1(torch.randn(2, 3, H), lstm)
