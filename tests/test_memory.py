"""course_utils.memory: cutting c between the marks, the forgot-first baseline, chrono init."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.memory import (
    between_marks,
    chrono_init_,
    first_marks,
    forgot_first_value,
    interchange_slope,
    run_with_cell_cut,
    run_with_state_swap,
    with_first_value,
)
from course_utils.tasks import long_gap_adding_problem


def test_between_marks_is_strictly_between():
    x = torch.zeros(1, 8, 2)
    x[0, [2, 6], 1] = 1.0
    assert between_marks(x)[0].nonzero().flatten().tolist() == [3, 4, 5]


def test_forgot_first_value_is_second_plus_half():
    task = long_gap_adding_problem(500, 30, window=5, seed=0)
    x, y = task.x, task.y
    pred = forgot_first_value(x)
    second = x[torch.arange(500), x[..., 1].flip(1).argmax(1).neg() + 29, 0]
    assert torch.allclose(pred, second + 0.5)
    assert abs(((pred - y) ** 2).mean().item() - 1 / 12) < 0.02  # the first value's variance


def test_rejects_sequences_without_two_marks():
    with pytest.raises(ValueError, match="exactly two marked steps"):
        between_marks(torch.zeros(2, 5, 2))


def test_no_cut_equals_the_lstm():
    torch.manual_seed(0)
    lstm = nn.LSTM(2, 4, batch_first=True)
    x = long_gap_adding_problem(8, 12, window=3, seed=1).x
    with torch.no_grad():
        assert torch.allclose(run_with_cell_cut(lstm, x), lstm(x)[0], atol=1e-6)


def test_cut_removes_a_value_held_only_in_c():
    """A hand-built keeper (as in notebook 01) holds the first value in c; the cut erases it."""
    lstm = _keeper()
    x = torch.zeros(1, 10, 2)
    x[0, [1, 8], 1] = 1.0
    x[0, 1, 0] = 0.8
    with torch.no_grad():
        kept = run_with_cell_cut(lstm, x)[0, 7, 0]
        cut = run_with_cell_cut(lstm, x, between_marks(x))[0, 7, 0]
        other_unit = run_with_cell_cut(lstm, x, between_marks(x), units=[])[0, 7, 0]
    assert kept > 0.5 and abs(cut) < 1e-3 and torch.isclose(other_unit, kept)


def test_chrono_init_spreads_forget_biases():
    lstm = nn.LSTM(2, 64, batch_first=True)
    chrono_init_(lstm, 120, generator=torch.Generator().manual_seed(0))
    forget = lstm.bias_ih_l0[64:128]
    assert forget.min() >= 0 and forget.max() <= torch.log(torch.tensor(119.0)) + 1e-6
    assert torch.equal(lstm.bias_ih_l0[:64], -forget)
    assert torch.equal(lstm.bias_hh_l0[:128], torch.zeros(128))
    with pytest.raises(ValueError, match="max_delay"):
        chrono_init_(lstm, 2)


def _keeper() -> nn.LSTM:
    """The hand-built keeper of notebook 01: writes the marked value into c and holds it."""
    lstm = nn.LSTM(2, 1, batch_first=True)
    with torch.no_grad():
        for p in lstm.parameters():
            p.zero_()
        lstm.weight_ih_l0[0, 1], lstm.bias_ih_l0[0] = 20.0, -10.0  # i: open on the marker
        lstm.bias_ih_l0[1] = 10.0  # f: keep
        lstm.weight_ih_l0[2, 0] = 1.0  # g: the value
        lstm.bias_ih_l0[3] = 10.0  # o: open
    return lstm


def _two_marks(values: list[float]) -> torch.Tensor:
    x = torch.zeros(len(values), 10, 2)
    x[:, [1, 8], 1] = 1.0
    x[:, 1, 0] = torch.tensor(values)
    return x


def test_with_first_value_changes_only_the_first_marked_value():
    x = long_gap_adding_problem(6, 30, window=5, seed=2).x
    new = torch.linspace(0, 1, 6)
    twin = with_first_value(x, new)
    first = first_marks(x)
    assert torch.equal(twin[torch.arange(6), first, 0], new)
    changed = (twin != x).nonzero()
    assert set(map(tuple, changed[:, :2].tolist())) <= set(enumerate(first.tolist()))
    with pytest.raises(ValueError, match="values of shape"):
        with_first_value(x, torch.zeros(5))


def test_swap_with_an_identical_donor_changes_nothing():
    torch.manual_seed(0)
    lstm = nn.LSTM(2, 4, batch_first=True)
    x = long_gap_adding_problem(8, 12, window=3, seed=1).x
    with torch.no_grad():
        for state in ("c", "h"):
            assert torch.allclose(
                run_with_state_swap(lstm, x, x, state=state), lstm(x)[0], atol=1e-6
            )


def test_swapping_c_moves_the_kept_value_and_swapping_h_does_not():
    """The keeper holds the value in c (no recurrent weights): c's swap carries it, h's does not."""
    lstm, x = _keeper(), _two_marks([0.2, 0.6, 0.9])
    donor = with_first_value(x, torch.tensor([0.7, 0.1, 0.3]))
    with torch.no_grad():
        own, twin = lstm(x)[0][:, 7, 0], lstm(donor)[0][:, 7, 0]
        by_c = run_with_state_swap(lstm, x, donor, state="c")[:, 7, 0]
        by_h = run_with_state_swap(lstm, x, donor, state="h")[:, 7, 0]
        other_units = run_with_state_swap(lstm, x, donor, units=[], state="c")[:, 7, 0]
    assert torch.allclose(by_c, twin, atol=1e-5) and not torch.allclose(own, twin, atol=1e-2)
    assert torch.allclose(by_h, own, atol=1e-5) and torch.allclose(other_units, own)
    slope_c = interchange_slope(by_c - own, twin - own)
    slope_h = interchange_slope(by_h - own, twin - own)
    assert abs(slope_c - 1) < 1e-3 and abs(slope_h) < 1e-3


def test_swap_rejects_a_donor_with_other_marks():
    lstm, x = _keeper(), _two_marks([0.2])
    donor = x.clone()
    donor[0, 1, 1], donor[0, 2, 1] = 0.0, 1.0
    with pytest.raises(ValueError, match="marked steps"):
        run_with_state_swap(lstm, x, donor)
    with pytest.raises(ValueError, match="state"):
        run_with_state_swap(lstm, x, x, state="f")


def test_one_unit_mask_per_row():
    torch.manual_seed(1)
    lstm = nn.LSTM(2, 3, batch_first=True)
    x = long_gap_adding_problem(4, 12, window=3, seed=3).x
    donor = with_first_value(x, torch.rand(4, generator=torch.Generator().manual_seed(0)))
    mask = torch.zeros(4, 3, dtype=torch.bool)
    mask[:, 1] = True
    with torch.no_grad():
        assert torch.allclose(
            run_with_state_swap(lstm, x, donor, mask), run_with_state_swap(lstm, x, donor, [1])
        )


def test_detached_cut_keeps_the_forward_pass_and_stops_the_gradient_along_c():
    lstm, x = _keeper(), _two_marks([0.5]).requires_grad_(True)
    gap = between_marks(x.detach())
    with torch.no_grad():
        assert torch.equal(run_with_cell_cut(lstm, x, gap, detach=True), run_with_cell_cut(lstm, x))
    (kept,) = torch.autograd.grad(run_with_cell_cut(lstm, x)[0, 7, 0], x)
    (cut,) = torch.autograd.grad(run_with_cell_cut(lstm, x, gap, detach=True)[0, 7, 0], x)
    assert kept[0, 1, 0] > 0.5 and cut[0, 1, 0] == 0


def test_interchange_slope():
    d = torch.tensor([0.5, -0.2, 0.9])
    assert interchange_slope(2 * d, d) == pytest.approx(2.0)
    assert interchange_slope(torch.zeros(3), d) == 0.0
    with pytest.raises(ValueError, match="equal length"):
        interchange_slope(torch.zeros(2), d)
