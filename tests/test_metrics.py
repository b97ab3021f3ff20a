"""course_utils.metrics: measurements of trained models and their attention weights."""

from __future__ import annotations

import pytest
import torch

from course_utils.masks import lengths_to_mask, masked_softmax
from course_utils.metrics import (
    alignment_accuracy,
    attention_mass,
    deviation_share,
    focus_ratio,
    future_attention,
    marked_share,
    masked_mse,
    r_squared,
)


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


def test_attention_mass():
    lengths = torch.tensor([4, 8])
    uniform = masked_softmax(torch.zeros(2, 8), lengths_to_mask(lengths, 8))
    pos = torch.tensor([[0, 3], [1, 6]])
    torch.testing.assert_close(attention_mass(uniform, pos), 2 / lengths.float())
    with pytest.raises(ValueError, match="same batch"):
        attention_mass(uniform, pos[:1])


def test_deviation_share_follows_where_the_content_is_not_only_the_weights():
    states = torch.zeros(2, 6, 3)
    pos = torch.tensor([[1, 4], [1, 4]])
    uniform = torch.full((2, 6), 1 / 6)
    # Content only at the relevant steps: uniform weights still draw all of it from them.
    states[:, 1] = torch.tensor([1.0, -2.0, 0.5])
    states[:, 4] = -states[:, 1]  # the average state stays 0
    assert torch.allclose(deviation_share(uniform, states, pos), torch.ones(2))
    # Content everywhere alike: uniform weights give the relevant steps their share 2/6 ...
    spread = torch.randn(2, 6, 3, generator=torch.Generator().manual_seed(0))
    spread = spread / spread.norm(dim=-1, keepdim=True) * 2  # every |h_t - 0| equal ...
    spread[:, ::2] *= -1  # ... around an average of exactly zero
    spread[:, 1::2] = -spread[:, ::2]
    torch.testing.assert_close(deviation_share(uniform, spread, pos), torch.full((2,), 2 / 6))
    # ... and weights on the relevant steps take all of it.
    focused = torch.zeros(2, 6)
    focused[:, [1, 4]] = 0.5
    torch.testing.assert_close(deviation_share(focused, spread, pos), torch.ones(2))
    # Padding (outside `real`) does not move the average state.
    real = lengths_to_mask(torch.tensor([6, 6]), 6)
    torch.testing.assert_close(deviation_share(uniform, spread, pos, real), torch.full((2,), 2 / 6))
    with pytest.raises(ValueError, match="same batch"):
        deviation_share(uniform[:1], spread, pos)


def test_deviation_share_is_blind_to_the_values():
    # The hostile case: states that stand out at the marked steps but carry no value at all.
    states = torch.zeros(3, 6, 2)
    states[:, [1, 4], 1] = 1.0  # a "marker" unit only; the value unit is 0 everywhere
    focused = torch.zeros(3, 6)
    focused[:, [1, 4]] = 0.5
    pos = torch.tensor([[1, 4]] * 3)
    torch.testing.assert_close(deviation_share(focused, states, pos), torch.ones(3))
    # ... yet the context is the same for every example, so no readout predicts a varying target.
    context = torch.einsum("bt,bth->bh", focused, states)
    assert torch.all(context == context[0])


def test_r_squared():
    y = torch.tensor([0.0, 1.0, 2.0, 3.0])
    assert r_squared(y, y) == 1.0
    assert r_squared(torch.full((4,), y.mean().item()), y) == 0.0
    assert r_squared(-y, y) < 0
    with pytest.raises(ValueError, match="constant"):
        r_squared(y, torch.ones(4))
    with pytest.raises(ValueError, match="one prediction per target"):
        r_squared(y[:3], y)


def test_alignment_accuracy():
    reverse = torch.tensor([3, 2, 1, 0])  # seq2seq.reverse_positions(4)
    anti = torch.eye(4).flip(1)  # (T, S) anti-diagonal
    assert alignment_accuracy(anti, reverse) == 1.0
    assert alignment_accuracy(torch.eye(4), reverse) == 0.0
    batch = torch.stack([anti, torch.eye(4)])
    assert alignment_accuracy(batch, reverse) == 0.5
    with pytest.raises(ValueError, match=r"\(batch, target_len, source_len\)"):
        alignment_accuracy(torch.zeros(4), reverse)


def test_marked_share_and_focus_ratio():
    weights = torch.full((3, 2, 1, 8), 1 / 8)  # uniform: focus ratio 1
    marks = torch.tensor([1, 3, 5])
    assert torch.allclose(marked_share(weights, marks), torch.full((3, 2), 2 / 8))
    assert focus_ratio(weights, marks) == pytest.approx(1.0)
    focused = torch.zeros(3, 2, 1, 8)
    focused[torch.arange(3), 1, 0, marks] = 1.0  # head 1 puts everything on the mark
    assert torch.equal(marked_share(focused, marks)[:, 1], torch.ones(3))
    assert focus_ratio(focused, marks) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="one mark position per example"):
        marked_share(weights, marks[:2])


def test_marked_share_lives_on_the_device_of_the_weights():
    # the course's device rule: what a helper creates lives on its inputs' device (meta = no GPU)
    weights = torch.empty(4, 2, 1, 8, device="meta")
    assert marked_share(weights, torch.tensor([1, 2, 3, 4])).device.type == "meta"
