"""Notebook 03's checkers fail on the starter code, fail on trivial stubs, pass on the references."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from course_utils.exercises import variable_lengths as ex
from tests.notebook_tools import assert_checker_contract, find_notebook

NB = find_notebook("03")


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


def _nonzero_count(output, lengths):  # the Masking trap: lengths read off the non-zero rows
    inferred = (output != 0).any(-1).sum(1)
    return output[_rows(inferred), inferred - 1]


def _last_nonzero(output, lengths):  # the last non-zero row taken as the end
    real = (output != 0).any(-1)  # (B, T)
    ends = [int(torch.nonzero(row).max()) for row in real]
    return output[_rows(lengths), torch.tensor(ends)]


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
            "lengths from the non-zero rows": (_nonzero_count, "inferred the lengths"),
            "last non-zero row": (_last_nonzero, "last non-zero row"),
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
    assert padded.any() and (output[padded] == 0).all()
    real_zero = (output == 0).all(-1) & ~padded  # real steps whose outputs are all zero
    assert real_zero.sum() == 2 and real_zero[2, lengths[2] - 1], "a real zero row at an end"
    assert not real_zero[:, 0].any()


def test_hints_for_usual_mistakes() -> None:
    assert "padding for the shorter ones" in str(
        ex.check_last_real_step(lambda output, lengths: output[:, -1])
    )
    off_by_one = lambda output, lengths: output[torch.arange(len(lengths)), lengths.clamp(max=4)]
    assert "off by one" in str(ex.check_last_real_step(off_by_one))
    assert "not skipped" in str(ex.check_masked_final_state(_no_skip))


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
