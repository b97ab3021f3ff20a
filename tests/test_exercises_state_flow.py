"""Notebook 02's checkers fail on the starter code, fail on trivial stubs, pass on the references."""

from __future__ import annotations

import pytest
import torch

from course_utils.exercises import state_flow as ex
from tests.notebook_tools import assert_checker_contract, find_notebook

NB = find_notebook("02")


def _loop_over_time(module, x):  # what the task rules out: one call per step
    return torch.stack([module(x[:, t]) for t in range(x.shape[1])], dim=1)


def _lstsq_r2(features, target, n_fit, *, intercept=True, rows="held out", divide=True):
    x = torch.cat([features, torch.ones(len(features), 1)], 1) if intercept else features
    w = torch.linalg.lstsq(x[:n_fit], target[:n_fit].unsqueeze(1)).solution[:, 0]
    scored = slice(n_fit, None) if rows == "held out" else slice(None, n_fit)
    mse = ((x[scored] @ w - target[scored]) ** 2).mean()
    return float(1 - mse / (target[scored].var(unbiased=False) if divide else 1.0))


CASES = [
    (
        "starter-time-distributed",
        "time_distributed",
        ex.check_time_distributed,
        ex.reference_time_distributed,
        [lambda module, x: x],
        {
            "module on (B, T, F)": (lambda module, x: module(x), "fold time into the batch"),
            "time and batch mixed": (
                lambda module, x: module(x.transpose(0, 1).reshape(-1, x.shape[2])).reshape(
                    x.shape[0], x.shape[1], -1
                ),
                "swap B and T",
            ),
            "unfolded as (T, B)": (
                lambda module, x: module(x.reshape(-1, x.shape[2])).reshape(
                    x.shape[1], x.shape[0], -1
                ),
                "not (T, B, -1)",
            ),
            "last step repeated": (
                lambda module, x: module(x[:, -1]).unsqueeze(1).expand(-1, x.shape[1], -1),
                "not only x[:, -1]",
            ),
            "a Python loop over time": (_loop_over_time, "loop over time"),
        },
    ),
    (
        "starter-probe",
        "probe_r2",
        ex.check_probe_r2,
        ex.reference_probe_r2,
        [lambda features, target, n_fit: 0.0, lambda features, target, n_fit: 1.0],
        {
            "scored on the fitted rows": (
                lambda f, t, n: _lstsq_r2(f, t, n, rows="fitted"),
                "rows it was fitted on",
            ),
            "no intercept": (lambda f, t, n: _lstsq_r2(f, t, n, intercept=False), "no intercept"),
            "1 - MSE": (lambda f, t, n: _lstsq_r2(f, t, n, divide=False), "variance"),
        },
    ),
]


@pytest.mark.parametrize("tag,name,checker,reference,stubs,wrong", CASES, ids=[c[0] for c in CASES])
def test_checker(tag, name, checker, reference, stubs, wrong) -> None:
    assert_checker_contract(NB, tag, name, checker, reference, stubs, wrong_answers=wrong)


def test_loop_over_time_gives_the_right_numbers_but_is_rejected() -> None:
    """The loop computes the right values: only the call count can tell it, and the hint says so."""
    feedback = ex.check_time_distributed(_loop_over_time)
    assert not feedback.passed and "called 5 times" in str(feedback)


def test_plain_least_squares_probe_passes() -> None:
    """A learner's lstsq probe (no ridge) passes: the course's ridge is only for stability."""
    assert ex.check_probe_r2(lambda f, t, n: _lstsq_r2(f, t, n)).passed
    assert ex.check_probe_r2(lambda f, t, n: torch.tensor(_lstsq_r2(f, t, n))).passed


def test_time_distributed_hints() -> None:
    def wrong_fold(module, x):  # mixes time and batch: view of the transposed tensor
        B, T, F = x.shape
        return module(x.transpose(0, 1).reshape(B * T, F)).reshape(B, T, -1)

    assert not ex.check_time_distributed(wrong_fold).passed
