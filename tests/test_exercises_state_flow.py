"""Notebook 02's checkers fail on the starter code, fail on trivial stubs, pass on the references."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.exercises import state_flow as ex
from tests.notebook_tools import assert_checker_contract, find_notebook

NB = find_notebook("02")


def _no_skip(lstm, x, mask):
    _, (h, c) = lstm(x)
    return h[-1], c[-1]


CASES = [
    (
        "starter-last-real-step",
        "last_real_step",
        ex.check_last_real_step,
        ex.reference_last_real_step,
        [
            lambda output, lengths: torch.zeros(output.shape[0], output.shape[2]),
            lambda output, lengths: output[:, -1],
        ],
    ),
    (
        "starter-masked-state",
        "masked_final_state",
        ex.check_masked_final_state,
        ex.reference_masked_final_state,
        [lambda lstm, x, mask: (torch.zeros(x.shape[0], lstm.hidden_size),) * 2, _no_skip],
    ),
    (
        "starter-time-distributed",
        "time_distributed",
        ex.check_time_distributed,
        ex.reference_time_distributed,
        [lambda module, x: x, lambda module, x: module(x)],
    ),
]


@pytest.mark.parametrize("tag,name,checker,reference,stubs", CASES, ids=[c[0] for c in CASES])
def test_checker(tag, name, checker, reference, stubs) -> None:
    assert_checker_contract(NB, tag, name, checker, reference, stubs)


def test_hints_for_usual_mistakes() -> None:
    assert "padding for the shorter ones" in str(
        ex.check_last_real_step(lambda output, lengths: output[:, -1])
    )
    off_by_one = lambda output, lengths: output[torch.arange(len(lengths)), lengths.clamp(max=4)]
    assert "off by one" in str(ex.check_last_real_step(off_by_one))
    assert "not skipped" in str(ex.check_masked_final_state(_no_skip))

    def wrong_fold(module, x):  # mixes time and batch: view of the transposed tensor
        B, T, F = x.shape
        return module(x.transpose(0, 1).reshape(B * T, F)).reshape(B, T, -1)

    assert not ex.check_time_distributed(wrong_fold).passed


def test_step_by_step_masking_solution_passes() -> None:
    """The solution the exercise asks for (one step at a time, keep the state where masked)."""

    def stepwise(lstm: nn.LSTM, x: torch.Tensor, mask: torch.Tensor):
        B, T, _ = x.shape
        h = c = torch.zeros(1, B, lstm.hidden_size)
        for t in range(T):
            _, (h_new, c_new) = lstm(x[:, t : t + 1], (h, c))
            m = mask[:, t].view(1, B, 1)
            h, c = torch.where(m, h_new, h), torch.where(m, c_new, c)
        return h[0], c[0]

    assert ex.check_masked_final_state(stepwise).passed
