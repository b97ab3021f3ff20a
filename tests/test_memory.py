"""course_utils.memory: cutting c between the marks, the forgot-first baseline, chrono init."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.data import long_gap_adding_problem
from course_utils.memory import between_marks, chrono_init_, forgot_first_value, run_with_cell_cut


def test_between_marks_is_strictly_between():
    x = torch.zeros(1, 8, 2)
    x[0, [2, 6], 1] = 1.0
    assert between_marks(x)[0].nonzero().flatten().tolist() == [3, 4, 5]


def test_forgot_first_value_is_second_plus_half():
    x, y = long_gap_adding_problem(500, 30, window=5, seed=0)
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
    x, _ = long_gap_adding_problem(8, 12, window=3, seed=1)
    with torch.no_grad():
        assert torch.allclose(run_with_cell_cut(lstm, x), lstm(x)[0], atol=1e-6)


def test_cut_removes_a_value_held_only_in_c():
    """A hand-built keeper (as in notebook 01) holds the first value in c; the cut erases it."""
    lstm = nn.LSTM(2, 1, batch_first=True)
    with torch.no_grad():
        for p in lstm.parameters():
            p.zero_()
        lstm.weight_ih_l0[0, 1], lstm.bias_ih_l0[0] = 20.0, -10.0  # i: open on the marker
        lstm.bias_ih_l0[1] = 10.0  # f: keep
        lstm.weight_ih_l0[2, 0] = 1.0  # g: the value
        lstm.bias_ih_l0[3] = 10.0  # o: open
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
