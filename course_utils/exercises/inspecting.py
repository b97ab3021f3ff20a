"""Exercises of notebook 10 (inspect your own model): checkers and reference solutions.

1. ``marked_share(weights, marks)``: from the per-head weights ``inspect`` records, how much the
   ``[CLS]`` query takes from the mark and the step after it, per example and head.
2. ``summary_vector(trace)``: from an ``LSTMTrace`` of a two-layer bidirectional LSTM with padded
   sequences, what the classifier of a BiLSTM reads: the top layer's forward h at each sequence's
   last real step and its backward h at step 0, ``(B, 2H)``.
3. ``my_claim(task_pairs, control_pairs)``: the capstone, a claim check of the learner's own:
   the course's rule (``IMPROVES_RULE``) against a rival trained the same way, at every seed, with a
   control measured by the same rule. The checker feeds error pairs with a known answer and rejects a
   constant control, a control measured on the task, a missing or swapped rival, and one seed only.

Each checker runs the learner's function and the reference on the same inputs (weights drawn from
the checker's own generator; an LSTM with its own seeded weights), compares what they compute and,
when the result equals what a usual mistake computes, says which mistake. Checkers leave the
learner's random generators as they were (:func:`~course_utils.feedback.checker`).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from ..checks import IMPROVES_RULE, ClaimCheck, claim_check, improves
from ..feedback import Feedback, checker, ran
from ..metrics import marked_share as reference_marked_share
from ..tracing import LSTMTrace, trace_lstm

__all__ = [
    "check_marked_share",
    "check_my_claim",
    "check_summary_vector",
    "reference_marked_share",
    "reference_my_claim",
    "reference_summary_vector",
]


# ---------------------------------------------------------------------------------- references
def reference_summary_vector(trace: LSTMTrace) -> torch.Tensor:
    """``[forward h at step lengths-1 ; backward h at step 0]`` of the top layer, ``(B, 2H)``."""
    rows = torch.arange(trace.batch)
    forward = trace.h[-1, 0, rows, trace.lengths - 1]  # (B, H): the forward pass ends here
    backward = trace.h[-1, 1, :, 0]  # (B, H): the backward pass reads right to left, ends at 0
    return torch.cat([forward, backward], dim=-1)


# ---------------------------------------------------------------------------------- checkers
def _weights_case() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(9)
    weights = torch.softmax(2 * torch.randn(5, 3, 9, 9, generator=g), dim=-1)  # (N, heads, L, S)
    marks = torch.tensor([1, 4, 7, 2, 5])
    return weights, marks


@checker
def check_marked_share(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Feedback:
    """Check ``fn(weights (N, heads, L, S), marks (N,)) -> (N, heads)``."""
    fb = Feedback("Exercise 10.1 - how much [CLS] takes from the mark, per head")
    weights, marks = _weights_case()
    result = fb.call(fn, weights.clone(), marks.clone())
    if not fb.check_result(
        result,
        (5, 3),
        hint="(N examples, heads)",
        known_shapes={
            (5,): (
                "got one number per example: the heads were averaged",
                "keep the heads axis: index weights[rows, :, 0, ...] so the result is (N, heads)",
            )
        },
    ):
        return fb
    expected = reference_marked_share(weights, marks)
    rows = torch.arange(5)
    mistakes = {
        "only the mark itself: add the weight on the step after it (the label's step)": (
            weights[:, :, 0][rows, :, marks]
        ),
        "query and key swapped: rows are queries (attending), columns keys (attended to); "
        "read row 0 ([CLS]) and the columns of the mark": (
            weights[rows, :, marks, 0] + weights[rows, :, marks + 1, 0]
        ),
        "the last query was read: [CLS] is query 0, the first row": (
            weights[:, :, -1][rows, :, marks] + weights[:, :, -1][rows, :, marks + 1]
        ),
    }
    if not fb.check_close(
        result,
        expected,
        "the shares of 5 examples x 3 heads",
        atol=1e-6,
        hint="take row 0 of each head (weights[:, :, 0]) and add its columns marks and marks + 1",
    ):
        fb.name_mistake(result, mistakes, atol=1e-6)
    return fb


def _trace_case() -> tuple[nn.LSTM, LSTMTrace, torch.Tensor]:
    g = torch.Generator().manual_seed(19)
    lstm = nn.LSTM(3, 4, num_layers=2, batch_first=True, bidirectional=True)  # two: top != layer 0
    with torch.no_grad():
        for p in lstm.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    x = torch.randn(4, 6, 3, generator=g)
    lengths = torch.tensor([6, 3, 5, 2])
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    return lstm, trace_lstm(lstm, packed), packed


@checker
def check_summary_vector(fn: Callable[[LSTMTrace], torch.Tensor]) -> Feedback:
    """Check ``fn(trace) -> (B, 2H)`` against the LSTM's own final states ``h_n``."""
    fb = Feedback("Exercise 10.2 - the BiLSTM's summary vector, read off the trace")
    lstm, trace, packed = _trace_case()
    result = fb.call(fn, trace)
    if not fb.check_result(
        result,
        (4, 8),
        hint="(batch, 2 * hidden_size)",
        known_shapes={
            (4, 4): (
                "got (B, H): one direction only",
                "a bidirectional LSTM has both directions: concatenate forward and backward, (B, 2H)",
            )
        },
    ):
        return fb
    with torch.no_grad():
        _, (h_n, _) = lstm(packed)  # (layers * 2, B, H): the module's own final states
    expected = torch.cat([h_n[-2], h_n[-1]], dim=-1)  # the top layer's forward ; backward
    rows = torch.arange(trace.batch)
    fwd_real, fwd_pad = trace.h[-1, 0, rows, trace.lengths - 1], trace.h[-1, 0, :, -1]
    bwd_start, bwd_last = trace.h[-1, 1, :, 0], trace.h[-1, 1, rows, trace.lengths - 1]
    mistakes = {
        "step T-1 is padding for the shorter sequences (its h is zero): read the forward h at "
        "step lengths - 1": torch.cat([fwd_pad, bwd_start], -1),
        "the backward direction reads right to left, so its final state is at step 0, not at "
        "the last step": torch.cat([fwd_real, bwd_last], -1),
        "both mistakes at once, as output[:, -1] does: padded last step and backward at the end": (
            torch.cat([fwd_pad, trace.h[-1, 1, :, -1]], -1)
        ),
        "the directions are swapped: forward first, then backward": torch.cat(
            [bwd_start, fwd_real], -1
        ),
        "layer 0 was read: the classifier reads the top layer, trace.h[-1] (this LSTM has "
        f"{trace.h.shape[0]} layers)": torch.cat(
            [trace.h[0, 0, rows, trace.lengths - 1], trace.h[0, 1, :, 0]], -1
        ),
    }
    if not fb.check_close(
        result,
        expected,
        "the summary vectors (the top layer's final states h_n, forward ; backward)",
        hint="forward: trace.h[-1, 0, rows, lengths - 1]; backward: trace.h[-1, 1, :, 0]",
    ):
        fb.name_mistake(result, mistakes, atol=1e-6)
    return fb


# ---------------------------------------------------------------------------------- capstone
def reference_my_claim(
    task_pairs: Sequence[tuple[torch.Tensor, torch.Tensor]],
    control_pairs: Sequence[tuple[torch.Tensor, torch.Tensor]],
) -> ClaimCheck:
    """Exercise 10.3: decide a claim of your own with the course's rule, against a trained rival.

    ``task_pairs`` and ``control_pairs`` hold, per seed, ``(model_errors, rival_errors)``: 0/1 per
    test item, the same items for both. The rule (:data:`~course_utils.checks.IMPROVES_RULE`) is
    decided on the task at every seed and measured the same way on the control.
    """
    task = [improves(model, rival) for model, rival in task_pairs]  # (holds, interval) per seed
    control = [improves(model, rival) for model, rival in control_pairs]
    return claim_check(
        article="003",
        quote="two heads find the wanted mark better than one",
        rule=IMPROVES_RULE,
        holds=[shown for shown, _ in task],
        control="the same rule on count_task, where every step matters equally",
        control_holds=[shown for shown, _ in control],
        finding="rival's error - model's, per seed: "
        + "; ".join(str(d) for _, d in task)
        + ". On the control: "
        + "; ".join(str(d) for _, d in control)
        + ".",
    )


def _holds(check: ClaimCheck) -> list[list[bool]]:
    """The rule's outcomes on the task, per part and seed."""
    return [list(v) for v in check.holds.values()]


def _control(check: ClaimCheck) -> list[list[bool]]:
    """The rule's outcomes on the control, per part and seed."""
    return [list(v) for v in check.control_holds.values()]


def _errors(g: torch.Generator, rate: float, n: int = 400) -> torch.Tensor:
    return (torch.rand(n, generator=g) < rate).float()  # 0/1 per test item


def _pairs(g: torch.Generator, model_rate: float, rival_rate: float, seeds: int = 3) -> list:
    return [(_errors(g, model_rate), _errors(g, rival_rate)) for _ in range(seeds)]


@checker
def check_my_claim(fn: Callable[[Sequence, Sequence], ClaimCheck]) -> Feedback:
    """Check ``fn(task_pairs, control_pairs) -> ClaimCheck`` on error pairs with a known answer."""
    fb = Feedback("Exercise 10.3 - your own claim check: rule, rival, measured control")
    g = torch.Generator().manual_seed(29)
    better, level = _pairs(g, 0.1, 0.4), _pairs(g, 0.25, 0.25)
    rival_better = _pairs(g, 0.1, 0.02)  # the model errs as little as in `better`, the rival less
    cases = {"true": (better, level), "false": (level, better), "rival": (rival_better, level)}
    results = {}
    for name, (task, control) in cases.items():
        with contextlib.redirect_stdout(
            io.StringIO()
        ):  # claim_check prints: keep the checker quiet
            results[name] = fb.call(fn, task, control)
        if not ran(results[name]):
            return fb
    wrong = [r for r in results.values() if not isinstance(r, ClaimCheck)]
    if not fb.check(
        not wrong,
        "returns the ClaimCheck that claim_check(...) returns",
        failure=f"expected a ClaimCheck, got {type(wrong[0]).__name__ if wrong else ''}",
        hint="end with `return claim_check(...)`",
    ):
        return fb
    true, false, rival = results["true"], results["false"], results["rival"]
    if not fb.check(
        all(len(v) == 3 for v in _holds(true) + _control(true)),
        "one outcome per seed, for the task and for the control",
        failure="the rule was not decided at each of the 3 seeds",
        hint="one bool per seed: a list with one improves(...)[0] for each pair, not only the first",
    ):
        return fb
    swapped = _holds(true) == [[False] * 3] and _holds(rival) == [[True] * 3]
    if not fb.check(
        _holds(rival) == [[False] * 3] and not swapped,
        "the rule compares the model with its rival",
        failure="the rule holds although the rival makes fewer errors than the model",
        hint=(
            "model and rival swapped: improves(model_errors, rival_errors) asks whether the model "
            "improves on the rival"
            if swapped
            else "missing rival: the rule must compare the model's errors with the rival's "
            "(improves(model_errors, rival_errors)), not look at the model alone"
        ),
    ):
        return fb
    if not fb.check(
        _control(true) != _control(false),
        "the control is measured: its outcome follows the control's errors",
        failure="constant control: control_holds stayed the same when the control's errors changed",
        hint="measure control_holds with the same rule on control_pairs; never type it in",
    ):
        return fb
    if not fb.check(
        _control(true) != _holds(true) or _control(false) != _holds(false),
        "the control is measured on the control pairs",
        failure="the control was measured on the task: control_holds always equals holds",
        hint="decide control_holds from control_pairs, not from task_pairs",
    ):
        return fb
    fb.check(
        true.verdict == "TRUE" and false.verdict == "FALSE",
        "the verdicts come out right: TRUE when the model wins on the task only, FALSE when only "
        "on the control",
        failure=f"verdicts {true.verdict} and {false.verdict}, expected TRUE and FALSE",
        hint="holds: improves(model, rival)[0] per task pair; control_holds: the same per "
        "control pair",
    )
    return fb
