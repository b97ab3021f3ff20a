"""Exercises of notebook 03 (variable-length sequences): checkers and reference solutions.

1. ``last_real_step(output, lengths)``: Keras's ``return_sequences=False`` for padded batches. The test
   case has real steps whose outputs are all zero, so inferring the lengths from the non-zero rows
   (the ``Masking(0.0)`` trap the notebook teaches) is rejected.
2. ``masked_final_state(lstm, x, mask)``: Keras's masking semantics, step by step: a masked step
   leaves h and c unchanged.

Each checker runs the learner's function and the reference on the same weights and inputs, compares
what they compute, and returns a :class:`~course_utils.feedback.Feedback`. When the learner's result
equals what a usual mistake computes (``output[:, -1]`` on padding, an off-by-one, lengths read off
the non-zero rows, a state reset at a masked step), the hint names that mistake. Checkers leave the
learner's random generators as they were (:func:`~course_utils.feedback.checker`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from ..feedback import Feedback, checker, ran

__all__ = [
    "check_last_real_step",
    "check_masked_final_state",
    "reference_last_real_step",
    "reference_masked_final_state",
]


# ---------------------------------------------------------------------------------- references
def reference_last_real_step(output: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each sequence's output at its last real step: ``(B, T, H)``, ``(B,)`` -> ``(B, H)``."""
    rows = torch.arange(output.shape[0], device=output.device)
    return output[rows, torch.as_tensor(lengths, device=output.device) - 1]


def reference_masked_final_state(
    lstm: nn.LSTM, x: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Final ``(h, c)`` ``(B, H)`` of a one-layer ``batch_first`` LSTM that skips masked steps.

    Keras's masking semantics: at a step where ``mask`` is False the state is carried over
    unchanged, so the result equals running the LSTM on the kept steps only. Here: move the kept
    steps to the front (in order) and pack by their count.
    """
    keep = mask.bool()
    lengths = keep.sum(dim=1)  # (B,)
    order = torch.argsort((~keep).int(), dim=1, stable=True)  # kept steps first, order kept
    compact = x.gather(1, order.unsqueeze(-1).expand_as(x))  # (B, T, F)
    packed = pack_padded_sequence(
        compact, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
    )
    _, (h, c) = lstm(packed)
    none_kept = (lengths == 0).unsqueeze(1)  # nothing kept: the initial (zero) state
    return h[-1].masked_fill(none_kept, 0.0), c[-1].masked_fill(none_kept, 0.0)


# ---------------------------------------------------------------------------------- checkers
def _by_nonzero_rows(output: torch.Tensor, how: str) -> torch.Tensor:
    """What a learner gets who ignores ``lengths`` and finds each end from the non-zero rows."""
    nonzero = (output != 0).any(dim=-1)  # (B, T): Keras's Masking(0.0) on the output
    if how == "count":
        ends = nonzero.sum(dim=1) - 1
    else:  # the last non-zero row
        steps = torch.arange(output.shape[1]).expand_as(nonzero)
        ends = torch.where(nonzero, steps, -1).max(dim=1).values
    return output[torch.arange(output.shape[0]), ends.clamp(min=0)]


@checker
def check_last_real_step(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Feedback:
    """Check ``fn(output (B, T, H), lengths (B,)) -> (B, H)`` on a zero-padded output."""
    fb = Feedback("Exercise 3.1 - the last real step of each sequence")
    lengths = torch.tensor([5, 2, 4])
    gen = torch.Generator().manual_seed(21)
    output = torch.randn(3, 5, 2, generator=gen)  # as pad_packed_sequence returns it:
    output[torch.arange(5) >= lengths.unsqueeze(1)] = 0.0  # zeros after each sequence's end
    output[0, 2] = 0.0  # a *real* step whose outputs are all zero, inside sequence 0
    output[2, 3] = 0.0  # and one at sequence 2's last real step
    got = fb.call(fn, output, lengths)
    if not ran(got) or not fb.check_tensor(got):
        return fb
    if not fb.check_shape(
        got,
        (3, 2),
        "the result for output (3, 5, 2)",
        hint="one row per sequence: index the time axis with lengths - 1",
    ):
        return fb
    expected = reference_last_real_step(output, lengths)
    real = (torch.arange(5) < lengths.unsqueeze(1)).unsqueeze(-1)  # (B, T, 1)
    mistakes = {
        # with zero padding, output[:, -1] and the off-by-one output[rows, lengths] both read zeros
        "you read a padded step, which is padding for the shorter ones (zeros): output[:, -1] "
        "does this, and so does output[rows, lengths] (off by one: a sequence of length n ends "
        "at index n - 1); use output[torch.arange(B), lengths - 1]": output[:, -1],
        "you averaged the real steps (mean pooling); return_sequences=False keeps only the last "
        "real step": (output * real).sum(1) / lengths.unsqueeze(1),
        "you took the first step; the last real step is at index lengths - 1": output[:, 0],
        "you inferred the lengths from the non-zero rows (the Masking trap): a real step can be "
        "all zeros, so counting or searching non-zero rows ends a sequence too early; use the "
        "lengths you are given": _by_nonzero_rows(output, "count"),
        "you took the last non-zero row (the Masking trap): a real step can be all zeros, so the "
        "last non-zero row is not always the last real step; use the lengths you are given": (
            _by_nonzero_rows(output, "last")
        ),
    }
    if not fb.check_close(
        got,
        expected,
        "the selected outputs",
        hint="output[torch.arange(B), lengths - 1] picks one step per row",
    ):
        fb.name_mistake(got, mistakes)
    return fb


def _stepwise_masked(
    lstm: nn.LSTM, x: torch.Tensor, mask: torch.Tensor, *, masked_h: str, masked_c: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Step-by-step masked LSTM where a masked step ``"keep"``s, ``"reset"``s or ``"update"``s."""

    def choose(how: str, m: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
        if how == "update":
            return new
        return torch.where(m, new, old if how == "keep" else torch.zeros_like(old))

    B = x.shape[0]
    h = c = torch.zeros(1, B, lstm.hidden_size)
    for t in range(x.shape[1]):
        _, (h_new, c_new) = lstm(x[:, t : t + 1], (h, c))
        m = mask[:, t].view(1, B, 1)
        h, c = choose(masked_h, m, h_new, h), choose(masked_c, m, c_new, c)
    return h[0], c[0]


@checker
def check_masked_final_state(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Feedback:
    """Check ``fn(lstm, x (B, T, F), mask (B, T)) -> (h, c)`` against running the kept steps only."""
    fb = Feedback("Exercise 3.2 - what Keras's Masking does to the state")
    torch.manual_seed(0)
    lstm = nn.LSTM(2, 3, batch_first=True)
    x = torch.randn(3, 6, 2)
    mask = torch.tensor(
        [[1, 1, 1, 1, 1, 1], [1, 0, 1, 1, 0, 0], [0, 1, 0, 1, 1, 0]], dtype=torch.bool
    )
    with torch.no_grad():
        pair = fb.check_pair(
            fb.call(fn, lstm, x, mask),
            "h",
            "c",
            hint="return the final hidden and cell states, each (B, H)",
        )
        if pair is None:
            return fb
        h, c = pair
        if not fb.check_shape(h, (3, 3), "h", hint="one final state per sequence: (B, H)"):
            return fb
        h_ref, c_ref = reference_masked_final_state(lstm, x, mask)
        _, (h_all, c_all) = lstm(x)
        counts = mask.sum(dim=1)
        first_steps = pack_padded_sequence(x, counts, batch_first=True, enforce_sorted=False)
        _, (h_first, c_first) = lstm(first_steps)
        mistakes = {
            "h is the state after *every* step: the masked steps were not skipped; at a masked "
            "step keep the previous state: h = torch.where(m, h_new, h)": (h_all[-1], c_all[-1]),
            "you reset the state to zero at a masked step; Keras carries the previous h and c "
            "over unchanged": _stepwise_masked(lstm, x, mask, masked_h="reset", masked_c="reset"),
            "h is kept at masked steps but c was updated: c must be carried over exactly like h": (
                _stepwise_masked(lstm, x, mask, masked_h="keep", masked_c="update")
            ),
            "you ran the first mask.sum() steps, as if the masked steps were padding at the "
            "end; masked steps can be anywhere, skip each one where it is": (
                h_first[-1],
                c_first[-1],
            ),
        }
        if not fb.check_close(
            h,
            h_ref,
            "h",
            hint=(
                "step through time: h_new, c_new = one step of the LSTM; then keep the old state where "
                "the mask is False (m = mask[:, t].unsqueeze(1); h = torch.where(m, h_new, h))"
            ),
        ):
            fb.name_mistake((h, c), mistakes)
        if not fb.check_close(
            c, c_ref, "c", hint="c must be carried over exactly like h at masked steps"
        ):
            fb.name_mistake((h, c), mistakes)
    return fb
