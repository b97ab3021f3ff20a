"""Exercises of notebook 02 (stacked LSTM state flow): checkers and reference solutions.

1. ``last_real_step(output, lengths)``: Keras's ``return_sequences=False`` for padded batches.
2. ``masked_final_state(lstm, x, mask)``: Keras's masking semantics, step by step: a masked step
   leaves h and c unchanged.
3. ``time_distributed(module, x)``: Keras's ``TimeDistributed``: one module on every time step.

Each checker runs the learner's function on cases with known answers and returns a
:class:`~course_utils.feedback.Feedback` with hints for the usual mistakes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from ..feedback import Feedback, ran

__all__ = [
    "check_masked_final_state",
    "check_last_real_step",
    "check_time_distributed",
    "reference_masked_final_state",
    "reference_last_real_step",
    "reference_time_distributed",
]


# ---------------------------------------------------------------------------------- references
def reference_last_real_step(output: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each sequence's output at its last real step: ``(B, T, H)``, ``(B,)`` -> ``(B, H)``."""
    rows = torch.arange(output.shape[0])
    return output[rows, torch.as_tensor(lengths) - 1]


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


def reference_time_distributed(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply ``module`` (which takes ``(N, F)``) to every step of ``x (B, T, F)``: ``(B, T, F')``."""
    B, T = x.shape[:2]
    y = module(x.reshape(B * T, *x.shape[2:]))  # (B*T, F')
    return y.reshape(B, T, *y.shape[1:])  # (B, T, F')


# ---------------------------------------------------------------------------------- checkers
def check_last_real_step(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Feedback:
    """Check ``fn(output (B, T, H), lengths (B,)) -> (B, H)``."""
    fb = Feedback("Exercise 2.1 - the last real step of each sequence")
    output = torch.arange(3 * 5 * 2, dtype=torch.float32).view(3, 5, 2)
    lengths = torch.tensor([5, 2, 4])
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
    if torch.equal(got, output[:, -1]):
        fb.fail(
            "you took step T-1 of every sequence, which is padding for the shorter ones",
            "this is what output[:, -1] does; use output[torch.arange(B), lengths - 1]",
        )
        return fb
    if torch.equal(got, output[torch.arange(3), lengths.clamp(max=4)]):
        fb.fail("off by one: a sequence of length n ends at index n - 1", "use lengths - 1")
        return fb
    fb.check_close(
        got,
        expected,
        "the selected outputs",
        hint="output[torch.arange(B), lengths - 1] picks one step per row",
    )
    return fb


def check_masked_final_state(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Feedback:
    """Check ``fn(lstm, x (B, T, F), mask (B, T)) -> (h, c)`` against running the kept steps only."""
    fb = Feedback("Exercise 2.2 - what Keras's Masking does to the state")
    torch.manual_seed(0)
    lstm = nn.LSTM(2, 3, batch_first=True)
    x = torch.randn(3, 6, 2)
    mask = torch.tensor(
        [[1, 1, 1, 1, 1, 1], [1, 0, 1, 1, 0, 0], [0, 1, 0, 1, 1, 0]], dtype=torch.bool
    )
    with torch.no_grad():
        result = fb.call(fn, lstm, x, mask)
        if not ran(result):
            return fb
        if not fb.check(
            isinstance(result, tuple) and len(result) == 2,
            "returns a pair (h, c)",
            failure=f"expected a pair (h, c), got {type(result).__name__}",
            hint="return the final hidden and cell states, each (B, H)",
        ):
            return fb
        h, c = result
        if not (fb.check_tensor(h, "h") and fb.check_tensor(c, "c")):
            return fb
        if not fb.check_shape(h, (3, 3), "h", hint="one final state per sequence: (B, H)"):
            return fb
        h_ref, c_ref = reference_masked_final_state(lstm, x, mask)
        _, (h_all, _) = lstm(x)
        if torch.allclose(h, h_all[-1], atol=1e-5):
            fb.fail(
                "h is the state after *every* step: the masked steps were not skipped",
                "at a masked step keep the previous state: h = torch.where(m, h_new, h)",
            )
            return fb
        fb.check_close(
            h,
            h_ref,
            "h",
            hint=(
                "step through time: h_new, c_new = one step of the LSTM; then keep the old state where "
                "the mask is False (m = mask[:, t].unsqueeze(1); h = torch.where(m, h_new, h))"
            ),
        )
        fb.check_close(c, c_ref, "c", hint="c must be carried over exactly like h at masked steps")
    return fb


class _Only2D(nn.Module):
    """A per-step head that refuses 3-D input, like many modules written for (N, F)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            raise ValueError(f"expected (N, 4), got {tuple(x.shape)}")
        return self.linear(x).relu()


def check_time_distributed(fn: Callable[[nn.Module, torch.Tensor], torch.Tensor]) -> Feedback:
    """Check ``fn(module, x (B, T, F)) -> (B, T, F')`` with a module that only takes ``(N, F)``."""
    fb = Feedback("Exercise 2.3 - TimeDistributed in PyTorch")
    torch.manual_seed(0)
    head = _Only2D()
    x = torch.randn(2, 5, 4)
    got = fb.call(fn, head, x)
    if not ran(got) or not fb.check_tensor(got):
        return fb
    if not fb.check_shape(
        got,
        (2, 5, 3),
        "the result for x (2, 5, 4) and a head 4 -> 3",
        hint="fold time into the batch: x.reshape(B * T, F), apply, then "
        "reshape back to (B, T, -1)",
    ):
        return fb
    expected = torch.stack([head(x[:, t]) for t in range(5)], dim=1)
    fb.check_close(
        got,
        expected,
        "the per-step outputs",
        hint="reshape (B, T, F) -> (B*T, F) keeps each step's features together; "
        "do not use .view on a transposed tensor or swap B and T",
    )
    return fb
