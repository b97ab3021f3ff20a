"""Tests of course_utils.bert_lstm: seed-000 strategies, masks, and the seed's 2-D LSTM call."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.bert_lstm import (
    ClsLSTM,
    MeanPoolLSTM,
    TokenLSTM,
    lengths_from_mask,
    masked_mean,
    multiply_adds,
    plot_comparison,
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


def test_masked_mean_ignores_padding_and_matches_a_loop():
    x, mask = batch()
    out = masked_mean(x, mask)
    expected = torch.stack([x[i, : int(mask[i].sum())].mean(0) for i in range(3)])
    torch.testing.assert_close(out, expected)
    assert not torch.allclose(masked_mean(x, None), expected)  # the seed's plain mean
    with pytest.raises(ValueError, match="expected mask of shape"):
        masked_mean(x, mask[:, :3])


def test_lengths_from_mask_checks_right_padding():
    _, mask = batch()
    assert lengths_from_mask(mask).tolist() == [5, 2, 4]
    with pytest.raises(ValueError, match="right-padded"):
        lengths_from_mask(mask.flip(1))
    with pytest.raises(ValueError, match="at least one real token"):
        lengths_from_mask(torch.zeros(2, 3))


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


def test_plot_comparison_draws_one_bar_per_strategy_and_kind_and_each_groups_chance():
    accs = {"a": {"all": 0.6, "plain": 0.7}, "b": {"all": 0.8, "plain": 0.9}}
    fig = plot_comparison(accs, chance={"all": 0.55, "plain": 0.66})
    ax = fig.axes[0]
    assert len(ax.patches) == 4
    assert ax.get_ylabel() == "test accuracy"
    levels = sorted(
        {round(y, 2) for c in ax.collections for seg in c.get_segments() for y in seg[:, 1]}
    )
    assert levels == [0.55, 0.66]  # one majority rate per group, not a hard-coded 0.5
    with pytest.raises(TypeError):
        plot_comparison(accs)  # chance is required: it comes from the data
    with pytest.raises(ValueError, match="one majority rate per key"):
        plot_comparison(accs, chance={"all": 0.5})
    with pytest.raises(ValueError, match="expected"):
        plot_comparison({"a": {"all": 0.5}, "b": {"plain": 0.5}}, chance=0.5)


def test_multiply_adds_counts_lstm_steps_packed_or_not_and_linear_layers():
    torch.manual_seed(0)
    x, mask = batch()  # lengths 5, 2, 4 of 7
    model = TokenLSTM(H, (5, 4)).eval()
    per_step = 4 * 5 * (H + 5) + 4 * 4 * (5 + 4)
    head = 3 * 4 * 2  # Linear(4, 2) on 3 rows
    assert multiply_adds(lambda: model(x, mask), model) == 11 * per_step + head  # real steps only
    model.use_mask = False
    assert multiply_adds(lambda: model(x, mask), model) == 21 * per_step + head  # padding too
    lstm = nn.LSTM(H, 5, num_layers=2, bidirectional=True)
    assert multiply_adds(lambda: lstm(x), lstm) == 2 * 21 * 4 * 5 * (H + 5) + 2 * 21 * 4 * 5 * 15
    lin = nn.Linear(H, 3)
    assert multiply_adds(lambda: lin(x)) == 21 * H * 3  # no hook needed: counted by FlopCounterMode
