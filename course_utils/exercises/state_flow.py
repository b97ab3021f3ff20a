"""Exercises of notebook 02 (stacked LSTM state flow): checkers and reference solutions.

1. ``time_distributed(module, x)``: Keras's ``TimeDistributed``: one module on every time step,
   without a Python loop over time (the checker counts the module's calls).
2. ``probe_r2(features, target, n_fit)``: the linear probe that asks what a layer holds: a ridge
   regression fitted on some rows and scored (held-out R^2) on the others.

Each checker runs the learner's function and the reference on the same inputs, compares what they
compute, and returns a :class:`~course_utils.feedback.Feedback`. When the learner's result equals what
a usual mistake computes (time and batch mixed up, a loop over time, a probe scored on its own rows,
no intercept, the error not divided by the variance), the hint names that mistake. Checkers leave the
learner's random generators as they were (:func:`~course_utils.feedback.checker`).

(The variable-length exercises that were here moved with their content to notebook 03:
:mod:`course_utils.exercises.variable_lengths`.)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..feedback import Feedback, checker, matches, ran
from ..probes import probe_r2

__all__ = [
    "check_probe_r2",
    "check_time_distributed",
    "reference_probe_r2",
    "reference_time_distributed",
]


# ---------------------------------------------------------------------------------- references
def reference_time_distributed(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply ``module`` (which takes ``(N, F)``) to every step of ``x (B, T, F)``: ``(B, T, F')``."""
    B, T = x.shape[:2]
    y = module(x.reshape(B * T, *x.shape[2:]))  # (B*T, F')
    return y.reshape(B, T, *y.shape[1:])  # (B, T, F')


def reference_probe_r2(features: torch.Tensor, target: torch.Tensor, n_fit: int) -> float:
    """Held-out R^2 of a linear probe (least squares with intercept) fitted on rows ``[:n_fit]``.

    The course's :func:`course_utils.probes.probe_r2` (with its tiny ridge for stability).
    """
    return probe_r2(features, target, n_fit=n_fit)


# ---------------------------------------------------------------------------------- checkers
class _Only2D(nn.Module):
    """A per-step head that refuses 3-D input, like many modules written for (N, F)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.calls = 0  # how often the learner's code called the module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if x.dim() != 2:
            raise ValueError(
                f"expected (N, 4), got {tuple(x.shape)}: this module takes one step at a time, "
                "(N, F); fold time into the batch first"
            )
        return self.linear(x).relu()


@checker
def check_time_distributed(fn: Callable[[nn.Module, torch.Tensor], torch.Tensor]) -> Feedback:
    """Check ``fn(module, x (B, T, F)) -> (B, T, F')`` with a module that only takes ``(N, F)``."""
    fb = Feedback("Exercise 2.1 - TimeDistributed in PyTorch")
    torch.manual_seed(0)
    head = _Only2D()
    x = torch.randn(2, 5, 4)
    got = fb.call(fn, head, x)
    calls, head.calls = head.calls, 0
    if not ran(got) or not fb.check_tensor(got):
        return fb
    if not fb.check(
        calls == 1,
        "the module is called once, on all steps together",
        failure=f"the module was called {calls} times for 5 steps",
        hint="a Python loop over time calls the module once per step (the task says without a "
        "loop): fold time into the batch, x.reshape(B * T, F), and call the module once",
    ):
        return fb
    if not fb.check_shape(
        got,
        (2, 5, 3),
        "the result for x (2, 5, 4) and a head 4 -> 3",
        hint="fold time into the batch: x.reshape(B * T, F), apply, then "
        "reshape back to (B, T, -1) (not (T, B, -1))",
    ):
        return fb
    with torch.no_grad():
        expected = torch.stack([head(x[:, t]) for t in range(5)], dim=1)
        mistakes = {
            "time and batch are mixed up: you folded the transposed tensor (T, B, F) but "
            "unfolded as (B, T); do not swap B and T": head(
                x.transpose(0, 1).reshape(10, 4)
            ).reshape(2, 5, 3),
            "every step got the last step's result: apply the module to every step, not only "
            "x[:, -1]": head(x[:, -1]).unsqueeze(1).expand(2, 5, 3),
        }
    if not fb.check_close(
        got,
        expected,
        "the per-step outputs",
        hint="reshape (B, T, F) -> (B*T, F) keeps each step's features together; "
        "do not use .view on a transposed tensor or swap B and T",
    ):
        fb.name_mistake(got, mistakes)
    return fb


def _probe_variant(
    features: torch.Tensor, target: torch.Tensor, n_fit: int, *, mistake: str
) -> float:
    """What a usual mistake computes instead of the held-out R^2."""
    x, y = features.double(), target.double()
    if mistake != "no intercept":
        x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    weights = torch.linalg.lstsq(x[:n_fit], y[:n_fit].unsqueeze(1)).solution[:, 0]
    rows = slice(None, n_fit) if mistake == "in-sample" else slice(n_fit, None)
    mse = ((x[rows] @ weights - y[rows]) ** 2).mean()
    if mistake == "not divided":
        return float(1 - mse)
    return float(1 - mse / y[rows].var(unbiased=False))


@checker
def check_probe_r2(fn: Callable[[torch.Tensor, torch.Tensor, int], float]) -> Feedback:
    """Check ``fn(features (N, D), target (N,), n_fit) -> float`` against the course's probe."""
    fb = Feedback("Exercise 2.2 - a linear probe, scored on held-out rows")
    gen = torch.Generator().manual_seed(22)
    features = torch.randn(60, 12, generator=gen)  # 12 features, 30 rows to fit: it can memorise
    signal = features[:, :3] @ torch.tensor([1.0, -1.0, 0.5])
    target = 3.0 + 2.0 * signal + 2.0 * torch.randn(60, generator=gen)  # mean 3, noisy
    got = fb.call(fn, features.clone(), target.clone(), 30)
    if not ran(got):
        return fb
    if not fb.check(
        isinstance(got, float | int | torch.Tensor) and torch.as_tensor(got).numel() == 1,
        "returns one number",
        failure=f"expected one number (the R^2), got {type(got).__name__}",
        hint="return a float: 1 - MSE / Var(target) on the scored rows",
    ):
        return fb
    value = float(torch.as_tensor(got))
    expected = reference_probe_r2(features, target, 30)
    mistakes = {
        "you scored the probe on the rows it was fitted on: with 12 features and 30 rows it "
        "memorises them; score on rows n_fit: only": "in-sample",
        "your probe has no intercept: the target's mean (3) is not 0; add a column of ones "
        "to the features": "no intercept",
        "you returned 1 - MSE without dividing by the target's variance on the scored rows: "
        "R^2 = 1 - MSE / Var(target)": "not divided",
    }
    if not fb.check(
        matches(value, expected, atol=1e-3),
        f"the held-out R^2 ({expected:.3f})",
        failure=f"expected a held-out R^2 of {expected:.3f}, got {value:.3f}",
        hint="fit least squares (with intercept) on rows [:n_fit], predict rows [n_fit:], and "
        "return 1 - MSE / Var(target[n_fit:])",
    ):
        fb.name_mistake(
            value,
            {
                hint: _probe_variant(features, target, 30, mistake=mistake)
                for hint, mistake in mistakes.items()
            },
            atol=1e-3,
        )
    return fb
