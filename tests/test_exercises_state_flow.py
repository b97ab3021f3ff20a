"""Notebook 02's checkers fail on the starter code, fail on trivial stubs, pass on the references."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from course_utils.exercises import state_flow as ex
from tests.notebook_tools import assert_checker_contract, find_notebook

NB = find_notebook("02")


def _no_skip(lstm, x, mask):
    _, (h, c) = lstm(x)
    return h[-1], c[-1]


def _pick(how, m, new, old):
    return new if how == "update" else torch.where(m, new, old if how == "keep" else 0 * old)


def _stepwise(lstm, x, mask, *, masked_h="keep", masked_c="keep"):
    """The step-by-step solution of 2.2, or a usual mistake at masked steps ("reset", "update")."""
    B = x.shape[0]
    h = c = torch.zeros(1, B, lstm.hidden_size)
    for t in range(x.shape[1]):
        _, (h_new, c_new) = lstm(x[:, t : t + 1], (h, c))
        m = mask[:, t].view(1, B, 1)
        h, c = _pick(masked_h, m, h_new, h), _pick(masked_c, m, c_new, c)
    return h[0], c[0]


def _first_count_steps(lstm, x, mask):  # treats masked steps as padding at the end
    packed = pack_padded_sequence(x, mask.sum(1), batch_first=True, enforce_sorted=False)
    _, (h, c) = lstm(packed)
    return h[-1], c[-1]


def _rows(lengths):
    return torch.arange(len(lengths))


CASES = [
    (
        "starter-last-real-step",
        "last_real_step",
        ex.check_last_real_step,
        ex.reference_last_real_step,
        [
            lambda output, lengths: torch.zeros(output.shape[0], output.shape[2]),
            lambda output, lengths: output[:, 0] * 0 + 1,
        ],
        {
            "output[:, -1]": (lambda output, lengths: output[:, -1], "read a padded step"),
            "off by one": (
                lambda output, lengths: output[_rows(lengths), lengths.clamp(max=4)],
                "off by one",
            ),
            "mean of the real steps": (
                lambda output, lengths: output.sum(1) / lengths.unsqueeze(1),
                "mean pooling",
            ),
            "first step": (lambda output, lengths: output[:, 0], "first step"),
        },
    ),
    (
        "starter-masked-state",
        "masked_final_state",
        ex.check_masked_final_state,
        ex.reference_masked_final_state,
        [lambda lstm, x, mask: (torch.zeros(x.shape[0], lstm.hidden_size),) * 2],
        {
            "no skipping": (_no_skip, "not skipped"),
            "state reset": (
                lambda lstm, x, mask: _stepwise(lstm, x, mask, masked_h="reset", masked_c="reset"),
                "reset the state to zero",
            ),
            "c updated at masked steps": (
                lambda lstm, x, mask: _stepwise(lstm, x, mask, masked_c="update"),
                "c must be carried over",
            ),
            "masked steps taken as end padding": (_first_count_steps, "can be anywhere"),
        },
    ),
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
        },
    ),
]


@pytest.mark.parametrize("tag,name,checker,reference,stubs,wrong", CASES, ids=[c[0] for c in CASES])
def test_checker(tag, name, checker, reference, stubs, wrong) -> None:
    assert_checker_contract(NB, tag, name, checker, reference, stubs, wrong_answers=wrong)


def test_last_real_step_case_is_zero_padded() -> None:
    """The docstring promises zero padding: a learner reading the padded steps sees zeros."""
    seen = {}

    def spy(output, lengths):
        seen["output"], seen["lengths"] = output, lengths
        return ex.reference_last_real_step(output, lengths)

    assert ex.check_last_real_step(spy).passed
    output, lengths = seen["output"], seen["lengths"]
    padded = torch.arange(output.shape[1]) >= lengths.unsqueeze(1)  # (B, T)
    assert padded.any() and (output[padded] == 0).all() and (output[~padded] != 0).all()


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
