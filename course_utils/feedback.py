"""Feedback for exercises: a checker says what is wrong and gives a hint, not just pass or fail.

A checker builds a :class:`Feedback`, runs the learner's function on a case it knows the answer to,
and records one line per check. Shown in a notebook, it reads like::

    Exercise 1.1 - the forget gate: 1 of 2 checks passed
      [ok]  returns a tensor of shape (4, 8)
      [no]  values differ from the reference by up to 0.31
            hint: the forget gate uses a sigmoid, not a tanh

Every checker reads the same way: compute the reference, compare (``fb.check_close``, built on
:func:`matches`, the one comparison), and when the check fails, name the mistake
(``fb.name_mistake(value, {hint: what_the_mistake_computes})``, built on :func:`matching_mistake`).
Exercise modules define no comparison of their own (``tests/test_feedback.py`` keeps it so).

Every checker is wrapped in :func:`checker`, which leaves the learner's random state as it was: a
checker builds its test models from its own seeds, and the notebook's next cell draws exactly what it
would have drawn without the check.

Tests (``tests/notebook_tools.assert_checker_contract``) prove each checker fails on the notebook's
starter code and on trivial stubs, rejects the plausible wrong answers the notebook warns about with a
hint that names the mistake, passes on the reference solution, and leaves every RNG untouched.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from .seeding import rng_restored

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
        """Shapes must match first; then values within ``atol`` of the reference (:func:`matches`)."""
        if tuple(value.shape) != tuple(expected.shape):
            return self.check_shape(value, tuple(expected.shape), what, hint=hint)
        diff = max_difference(value, expected)
        return self.check(
            diff <= atol,
            f"{what} match the reference",
            failure=f"{what} differ from the reference by up to {diff:.3g}",
            hint=hint,
        )

    def check_result(
        self,
        value: Any,
        shape: tuple[int, ...],
        what: str = "the result",
        *,
        hint: str | None = None,
        known_shapes: dict[tuple[int, ...], tuple[str, str]] | None = None,
    ) -> bool:
        """The learner's function ran and returned a tensor of ``shape`` (else stop checking).

        ``known_shapes`` maps the shape a usual mistake gives to the failure and hint that name it
        (``{(2, 5, 5): ("got (B, T, T): the heads were averaged", "keep one matrix per head")}``).
        """
        if not ran(value) or not self.check_tensor(value):
            return False
        if tuple(value.shape) != tuple(shape) and tuple(value.shape) in (known_shapes or {}):
            self.fail(*known_shapes[tuple(value.shape)])  # type: ignore[index]
            return False
        return self.check_shape(value, shape, what, hint=hint)

    def check_pair(
        self, value: Any, first: str, second: str, *, hint: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The learner's function returned a pair of tensors ``(first, second)``: the pair, else None."""
        if not ran(value) or not self.check(
            isinstance(value, tuple) and len(value) == 2,
            f"returns a pair ({first}, {second})",
            failure=f"expected a pair ({first}, {second}), got {type(value).__name__}",
            hint=hint or f"end with `return {first}, {second}`",
        ):
            return None
        a, b = value
        if not (self.check_tensor(a, first) and self.check_tensor(b, second)):
            return None
        return a, b

    def name_mistake(
        self,
        value: Any,
        mistakes: dict[str, Any],
        *,
        otherwise: str | None = None,
        atol: float = 1e-5,
    ) -> None:
        """Give the last failed check the hint of the known mistake ``value`` reproduces.

        ``mistakes`` maps a hint that names a mistake to what that mistake computes on the checker's
        case (:func:`matching_mistake`); when none matches, the hint is ``otherwise``, or the failed
        check's own hint when ``otherwise`` is None. Every checker reads: compute the reference,
        compare (a check), and when it fails, name the mistake::

            if not fb.check_close(got, expected, "the gains", hint="take a product over time"):
                fb.name_mistake(got, {"you took a sum over time": f.sum(dim=0)})
        """
        if not self.lines or self.lines[-1][0]:
            raise ValueError(
                "name_mistake explains a failed check: call it right after one "
                "(`if not fb.check_close(...): fb.name_mistake(...)`)"
            )
        _, message, own_hint = self.lines[-1]
        hint = matching_mistake(value, mistakes, atol=atol) or otherwise or own_hint
        self.lines[-1] = (False, message, hint)

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


def max_difference(value: object, expected: object) -> float:
    """The largest absolute difference between a learner's ``value`` and ``expected``.

    ``expected`` is a tensor, a number, or a tuple of them (compared item by item). The result is
    ``inf`` when the two cannot be compared (not a tensor, another shape, another length) and
    ``nan`` when ``value`` holds NaN, so ``max_difference(...) <= atol`` is never true by accident.

    >>> max_difference(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]))
    0.5
    >>> max_difference(torch.ones(2), torch.ones(3))
    inf
    """
    if isinstance(expected, tuple | list):
        if not isinstance(value, tuple | list) or len(value) != len(expected):
            return math.inf
        diffs = [max_difference(v, e) for v, e in zip(value, expected, strict=True)]
        return math.nan if any(math.isnan(d) for d in diffs) else max(diffs, default=0.0)
    if isinstance(expected, torch.Tensor):
        if not isinstance(value, torch.Tensor) or value.shape != expected.shape:
            return math.inf
        if value.numel() == 0:
            return 0.0
        a = value.detach().double()
        b = expected.detach().to(device=value.device, dtype=torch.float64)
        return (a - b).abs().max().item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return math.inf
    return abs(float(value) - float(expected))  # type: ignore[arg-type]


def matches(value: object, expected: object, *, atol: float = 1e-5) -> bool:
    """Whether a learner's ``value`` is ``expected``, to ``atol``: the one comparison of every checker.

    ``expected`` is a tensor (``value`` must be a tensor of the same shape), a number, or a tuple of
    them such as ``(h, c)``.

    >>> matches(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-7]))
    True
    >>> matches((torch.zeros(2), 3), (torch.zeros(2), 3.5))
    False
    """
    return max_difference(value, expected) <= atol


def matching_mistake(value: object, mistakes: dict[str, Any], *, atol: float = 1e-5) -> str | None:
    """The hint of the first known mistake whose result ``value`` reproduces, else ``None``.

    ``mistakes`` maps a hint that names a mistake to what that mistake computes on the checker's
    case (anything :func:`matches` compares): the one way every checker names the mistake a
    learner made.

    >>> matching_mistake(torch.ones(2), {"you summed": torch.full((2,), 2.0), "ones": torch.ones(2)})
    'ones'
    """
    return next(
        (hint for hint, wrong in mistakes.items() if matches(value, wrong, atol=atol)), None
    )


def ran(value: Any) -> bool:
    """Whether :meth:`Feedback.call` produced a value (False: stop checking, the failure is recorded)."""
    return value is not _NOT_RUN


def checker(fn: F) -> F:
    """Decorate an exercise checker so it leaves every random generator as it found it.

    Checkers seed their own test models (``torch.manual_seed`` inside is fine); Python's ``random``,
    NumPy's global generator and PyTorch's CPU and CUDA generators are restored on return
    (:func:`~course_utils.seeding.rng_restored`).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with rng_restored():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
