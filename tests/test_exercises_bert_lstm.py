"""The checkers of notebook 08 fail on the starter code, on trivial stubs and on the usual mistakes
(each with a hint that names it), pass on the solutions and leave the learner's RNG alone."""

from __future__ import annotations

import pytest
import torch

from course_utils.exercises import bert_lstm as ex
from tests.notebook_tools import assert_checker_contract, find_notebook

NB = find_notebook("08")


def _masked_sum(x, m):
    return (x * m.unsqueeze(-1)).sum(dim=1)


def _off_by_one(o, m):
    idx = m.sum(dim=1).clamp_max(o.shape[1] - 1)
    return o[torch.arange(len(o)), idx]


CASES = [
    (
        "starter-masked-mean",
        "masked_mean_pool",
        ex.check_masked_mean_pool,
        ex.reference_masked_mean_pool,
        [lambda x, m: torch.zeros(4, 5)],
        {
            "padding averaged in": (lambda x, m: x.mean(dim=1), "padding is averaged in"),
            "sum, not mean": (_masked_sum, "did not divide"),
            "divided by T": (lambda x, m: _masked_sum(x, m) / x.shape[1], "not by T"),
        },
    ),
    (
        "starter-last-output",
        "last_real_output",
        ex.check_last_real_output,
        ex.reference_last_real_output,
        [lambda o, m: torch.zeros(4, 3)],
        {
            "outputs[:, -1]": (lambda o, m: o[:, -1], "outputs[:, -1]"),
            "off by one": (_off_by_one, "off by one"),
            "first token": (lambda o, m: o[:, 0], "outputs[:, 0]"),
        },
    ),
    (
        "starter-attention-received",
        "attention_received",
        ex.check_attention_received,
        ex.reference_attention_received,
        [lambda w, k: torch.zeros(w.shape[:2])],
        {
            "row, not column": (lambda w, k: w[..., k, :].mean(-1), "row of the key"),
            "sum over queries": (lambda w, k: w[..., k].sum(-1), "summed"),
            "hard-coded key": (lambda w, k: w[..., 2].mean(-1), "key argument"),
        },
    ),
]


@pytest.mark.parametrize(
    ("tag", "name", "check", "solution", "stubs", "wrong"), CASES, ids=[c[0] for c in CASES]
)
def test_checker(tag, name, check, solution, stubs, wrong):
    assert_checker_contract(NB, tag, name, check, solution, stubs, wrong_answers=wrong)
    for stub in stubs:  # and a failing stub gets a hint, not just a verdict
        assert "hint:" in str(check(stub))


def test_feedback_names_the_padding_mistake():
    feedback = ex.check_masked_mean_pool(lambda x, m: x.mean(dim=1))
    assert "padding is averaged in" in str(feedback)
    feedback = ex.check_last_real_output(lambda o, m: o[:, -1])
    assert "outputs[:, -1]" in str(feedback)
