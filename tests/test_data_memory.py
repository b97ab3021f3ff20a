"""course_utils.data.long_gap_adding_problem: marks far apart, the adding problem's target."""

from __future__ import annotations

import pytest
import torch

from course_utils.data import long_gap_adding_problem


def test_marks_lie_in_the_windows_and_target_is_their_sum():
    x, y = long_gap_adding_problem(300, 120, window=10, seed=3)
    marks = x[..., 1].nonzero()
    first, second = marks[::2, 1], marks[1::2, 1]
    assert x.shape == (300, 120, 2) and (x[..., 1].sum(1) == 2).all()
    assert first.max() < 10 and second.min() >= 110 and (second - first).min() >= 101
    assert torch.allclose((x[..., 0] * x[..., 1]).sum(1), y)


def test_seeded_and_validated():
    a, _ = long_gap_adding_problem(4, 30, seed=1)
    b, _ = long_gap_adding_problem(4, 30, seed=1)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="window"):
        long_gap_adding_problem(4, 10, window=6)
