"""The checkers of notebook 07 fail on the starter code, fail on trivial stubs, pass on the solutions."""

from __future__ import annotations

import pytest
import torch

from course_utils.exercises import bert_lstm as ex
from tests.notebook_tools import assert_checker_contract, find_notebook

NB = find_notebook("07")

CASES = [
    (
        "starter-masked-mean",
        "masked_mean_pool",
        ex.check_masked_mean_pool,
        ex.masked_mean_pool_solution,
        [lambda x, m: x.mean(dim=1), lambda x, m: torch.zeros(4, 5)],
    ),
    (
        "starter-last-output",
        "last_real_output",
        ex.check_last_real_output,
        ex.last_real_output_solution,
        [lambda o, m: o[:, -1], lambda o, m: torch.zeros(4, 3)],
    ),
    (
        "starter-attention-received",
        "attention_received",
        ex.check_attention_received,
        ex.attention_received_solution,
        [
            lambda w, k: w[..., k, :].mean(-1),
            lambda w, k: torch.zeros(w.shape[:2]),
            lambda w, k: w[..., 2].mean(-1),
        ],
    ),
]


@pytest.mark.parametrize(
    ("tag", "name", "check", "solution", "stubs"), CASES, ids=[c[0] for c in CASES]
)
def test_checker(tag, name, check, solution, stubs):
    assert_checker_contract(NB, tag, name, check, solution, stubs)
    for stub in stubs:  # and a failing stub gets a hint, not just a verdict
        assert "hint:" in str(check(stub))


def test_feedback_names_the_padding_mistake():
    feedback = ex.check_masked_mean_pool(lambda x, m: x.mean(dim=1))
    assert "padding is averaged in" in str(feedback)
    feedback = ex.check_last_real_output(lambda o, m: o[:, -1])
    assert "outputs[:, -1]" in str(feedback)
