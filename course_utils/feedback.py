"""Feedback for exercises: a checker says what is wrong and gives a hint, not just pass or fail.

A checker builds a :class:`Feedback`, runs the learner's function on a case it knows the answer to,
and records one line per check. Shown in a notebook, it reads like::

    Exercise 1.1 - the forget gate: 1 of 2 checks passed
      [ok]  returns a tensor of shape (4, 8)
      [no]  values differ from the reference by up to 0.31
            hint: the forget gate uses a sigmoid, not a tanh

Every checker is wrapped in :func:`checker`, which leaves the learner's random state as it was: a
checker builds its test models from its own seeds, and the notebook's next cell draws exactly what it
would have drawn without the check.

Tests (``tests/notebook_tools.assert_checker_contract``) prove each checker fails on the notebook's
starter code and on trivial stubs, rejects the plausible wrong answers the notebook warns about with a
hint that names the mistake, passes on the reference solution, and leaves every RNG untouched.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch

F = TypeVar("F", bound=Callable[..., Any])

_NOT_RUN = object()


@dataclass
class Feedback:
    """The result of checking one exercise: lines of [ok]/[no] with hints."""

    title: str
    lines: list[tuple[bool, str, str | None]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when at least one check ran and every check passed."""
        return bool(self.lines) and all(ok for ok, _, _ in self.lines)

    def ok(self, message: str) -> None:
        self.lines.append((True, message, None))

    def fail(self, message: str, hint: str | None = None) -> None:
        self.lines.append((False, message, hint))

    def check(
        self, condition: bool, message: str, *, hint: str | None = None, failure: str | None = None
    ) -> bool:
        """Record ``message`` as passed if ``condition`` holds, else ``failure`` (or it) with a hint."""
        if condition:
            self.ok(message)
        else:
            self.fail(failure or message, hint)
        return bool(condition)

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the learner's function; record a clear failure if it is unfinished or raises.

        Returns the function's result, or :data:`NOT_RUN` when it raised (then stop checking).
        """
        name = getattr(fn, "__name__", "your function")
        try:
            return fn(*args, **kwargs)
        except NotImplementedError:
            self.fail(
                f"{name} is not written yet",
                "replace `raise NotImplementedError` with your code, run the cell, then check again",
            )
        except Exception as exc:  # the learner's bug: report it, do not crash the notebook
            self.fail(
                f"{name} raised {type(exc).__name__}: {exc}",
                "read the message above; print the shapes of your tensors to find the line",
            )
        return _NOT_RUN

    def check_tensor(self, value: Any, what: str = "the result") -> bool:
        return self.check(
            isinstance(value, torch.Tensor),
            f"{what} is a tensor",
            failure=f"{what} should be a torch.Tensor, got {type(value).__name__}",
            hint="return a tensor, not a list, a number or None",
        )

    def check_shape(
        self,
        value: torch.Tensor,
        shape: tuple[int, ...],
        what: str = "the result",
        *,
        hint: str | None = None,
    ) -> bool:
        got = tuple(value.shape)
        return self.check(
            got == tuple(shape),
            f"{what} has shape {tuple(shape)}",
            failure=f"{what} has shape {got}, expected {tuple(shape)}",
            hint=hint,
        )

    def check_close(
        self,
        value: torch.Tensor,
        expected: torch.Tensor,
        what: str = "the values",
        *,
        atol: float = 1e-5,
        hint: str | None = None,
    ) -> bool:
        """Shapes must match first; then values within ``atol`` of the reference."""
        if tuple(value.shape) != tuple(expected.shape):
            return self.check_shape(value, tuple(expected.shape), what, hint=hint)
        diff = (value.detach().double() - expected.detach().double()).abs().max().item()
        return self.check(
            diff <= atol,
            f"{what} match the reference",
            failure=f"{what} differ from the reference by up to {diff:.3g}",
            hint=hint,
        )

    def name_mistake(
        self,
        value: torch.Tensor,
        mistakes: dict[str, torch.Tensor],
        *,
        otherwise: str,
        atol: float = 1e-6,
    ) -> None:
        """Give the last failed check the hint of the known mistake ``value`` reproduces.

        ``mistakes`` maps a hint that names a mistake to what that mistake computes on the checker's
        case; when none matches, the hint is ``otherwise``.
        """
        if not self.lines or self.lines[-1][0]:
            raise ValueError("name_mistake explains a failed check: call it right after one")
        hint = matching_mistake(value, mistakes, atol=atol) or otherwise
        self.lines[-1] = (False, self.lines[-1][1], hint)

    def __str__(self) -> str:
        n_ok = sum(ok for ok, _, _ in self.lines)
        status = (
            "all checks passed - well done!"
            if self.passed
            else (f"{n_ok} of {len(self.lines)} checks passed")
        )
        out = [f"{self.title}: {status}"]
        for ok, message, hint in self.lines:
            out.append(f"  [{'ok' if ok else 'no'}]  {message}")
            if hint and not ok:
                out.append(f"        hint: {hint}")
        return "\n".join(out)

    def __repr__(self) -> str:  # shown when a checker is the last expression of a cell
        return str(self)


#: Returned by :meth:`Feedback.call` when the learner's function did not produce a result.
NOT_RUN = _NOT_RUN


def same_tensor(value: object, expected: torch.Tensor, atol: float = 1e-5) -> bool:
    """Whether a learner's ``value`` is a tensor equal to ``expected`` (same shape, within ``atol``)."""
    return (
        isinstance(value, torch.Tensor)
        and value.shape == expected.shape
        and bool(torch.allclose(value.detach().double(), expected.detach().double(), atol=atol))
    )


def matching_mistake(
    value: object, mistakes: dict[str, torch.Tensor], *, atol: float = 1e-5
) -> str | None:
    """The hint of the first known mistake whose result ``value`` reproduces, else ``None``.

    ``mistakes`` maps a hint that names a mistake to what that mistake computes on the checker's
    case: the one way every checker names the mistake a learner made.
    """
    return next((hint for hint, wrong in mistakes.items() if same_tensor(value, wrong, atol)), None)


def ran(value: Any) -> bool:
    """Whether :meth:`Feedback.call` produced a value (False: stop checking, the failure is recorded)."""
    return value is not _NOT_RUN


def checker(fn: F) -> F:
    """Decorate an exercise checker so it leaves every random generator as it found it.

    Checkers seed their own test models (``torch.manual_seed`` inside is fine); Python's ``random``,
    NumPy's global generator and PyTorch's CPU and CUDA generators are restored on return.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002
        try:
            with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
                return fn(*args, **kwargs)
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)  # noqa: NPY002

    return wrapper  # type: ignore[return-value]
