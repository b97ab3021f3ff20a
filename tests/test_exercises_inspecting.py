"""Notebook 10 exercise checkers: fail on the starter and on stubs, reject the usual mistakes with a
hint that names them, pass on the reference, leave the RNG alone."""

from __future__ import annotations

import torch

from course_utils.checks import IMPROVES_RULE, claim_check, improves
from course_utils.exercises.inspecting import (
    check_marked_share,
    check_my_claim,
    check_summary_vector,
    reference_marked_share,
    reference_my_claim,
    reference_summary_vector,
)
from tests.notebook_tools import assert_checker_contract, find_notebook

NOTEBOOK = find_notebook("10")


def _rows(x: torch.Tensor) -> torch.Tensor:
    return torch.arange(x.shape[0])


def test_marked_share_checker_contract():
    def heads_averaged(w, m):
        return reference_marked_share(w, m).mean(-1)

    def mark_only(w, m):
        return w[:, :, 0][_rows(w), :, m]

    def query_key_swapped(w, m):
        return w[_rows(w), :, m, 0] + w[_rows(w), :, m + 1, 0]

    def last_query(w, m):
        return w[:, :, -1][_rows(w), :, m] + w[:, :, -1][_rows(w), :, m + 1]

    assert_checker_contract(
        NOTEBOOK,
        "starter-marked-share",
        "marked_share",
        check_marked_share,
        reference_marked_share,
        stubs=[lambda w, m: torch.zeros(w.shape[0], w.shape[1])],
        wrong_answers={
            "heads averaged": (heads_averaged, "heads were averaged"),
            "the mark only": (mark_only, "step after it"),
            "query and key swapped": (query_key_swapped, "query and key swapped"),
            "the last query": (last_query, "[CLS] is query 0"),
        },
    )


def test_summary_vector_checker_contract():
    def padded_last_step(tr):
        return torch.cat([tr.h[-1, 0, :, -1], tr.h[-1, 1, :, 0]], -1)

    def backward_at_the_end(tr):
        rows = _rows(tr.lengths)
        return torch.cat([tr.h[-1, 0, rows, tr.lengths - 1], tr.h[-1, 1, rows, tr.lengths - 1]], -1)

    def output_last(tr):
        return tr.output()[:, -1]

    def forward_only(tr):
        return tr.h[-1, 0, _rows(tr.lengths), tr.lengths - 1]

    def swapped(tr):
        rows = _rows(tr.lengths)
        return torch.cat([tr.h[-1, 1, :, 0], tr.h[-1, 0, rows, tr.lengths - 1]], -1)

    def layer_zero(tr):
        rows = _rows(tr.lengths)
        return torch.cat([tr.h[0, 0, rows, tr.lengths - 1], tr.h[0, 1, :, 0]], -1)

    assert_checker_contract(
        NOTEBOOK,
        "starter-summary-vector",
        "summary_vector",
        check_summary_vector,
        reference_summary_vector,
        stubs=[lambda tr: torch.zeros(tr.batch, 2 * tr.hidden_size)],
        wrong_answers={
            "padded last step": (padded_last_step, "padding"),
            "backward at the last step": (backward_at_the_end, "step 0"),
            "output[:, -1]": (output_last, "output[:, -1]"),
            "one direction": (forward_only, "one direction only"),
            "directions swapped": (swapped, "swapped"),
            "layer 0 instead of the top layer": (layer_zero, "layer 0 was read"),
        },
    )


def _verdict_fn(holds, control_holds):
    """A my_claim built from two rules, each ``(task_pairs, control_pairs) -> holds``."""

    def my_claim(task_pairs, control_pairs):
        return claim_check(
            article="003",
            quote="two heads find the wanted mark better than one",
            rule=IMPROVES_RULE,
            holds=holds(task_pairs, control_pairs),
            control="the same rule on count_task",
            control_holds=control_holds(task_pairs, control_pairs),
            finding="synthetic errors",
        )

    return my_claim


def test_my_claim_checker_contract():
    def rule_on(pairs):
        return [improves(model, rival)[0] for model, rival in pairs]

    def on_task(task, control):
        return rule_on(task)

    def on_control(task, control):
        return rule_on(control)

    def swapped(task, control):
        return [improves(rival, model)[0] for model, rival in task]

    def swapped_control(task, control):
        return [improves(rival, model)[0] for model, rival in control]

    def model_alone(task, control):  # no rival: the model's error rate below a bar
        return [bool(model.mean() < 0.3) for model, _ in task]

    def first_seed(task, control):
        return improves(*task[0])[0]

    def first_seed_control(task, control):
        return improves(*control[0])[0]

    assert_checker_contract(
        NOTEBOOK,
        "starter-my-claim",
        "my_claim",
        check_my_claim,
        reference_my_claim,
        stubs=[lambda task, control: None],
        wrong_answers={
            "constant control": (
                _verdict_fn(on_task, lambda task, control: [False] * 3),
                "constant control",
            ),
            "control measured on the task": (_verdict_fn(on_task, on_task), "measured on the task"),
            "missing rival": (_verdict_fn(model_alone, on_control), "missing rival"),
            "model and rival swapped": (_verdict_fn(swapped, swapped_control), "swapped"),
            "one seed only": (_verdict_fn(first_seed, first_seed_control), "each of the 3 seeds"),
        },
    )
