"""Claim checks and numeric comparisons: how a notebook proves what it says.

The seed articles contain real errors. A claim check quotes the article, states the rule that decides
it, measures the claim and a control, and lets the rule compute the verdict: nobody types it in.

    check = claim_check(
        seed="003",
        quote="... text generation or translation.",
        rule="holds if the unmasked model's next-token loss stays at or above the honest floor",
        holds=[loss >= floor for loss in leaky_losses],       # one bool per seed
        control="the same model with a causal mask",
        control_holds=[loss >= floor for loss in causal_losses],
        finding=f"leaky loss {span(leaky_losses)} nats vs floor {floor:.2f} ...",
    )

How the verdict is computed (the same for every check in the course):

- ``holds`` is one bool, a list of bools (one per seed), or a dict ``{part: bool or list}`` for a
  claim with several parts. A part holds when it holds at every seed, fails when it fails at every
  seed; when the seeds disagree the whole claim is ``NOT SUPPORTED`` (the evidence does not back it).
- All parts hold: ``TRUE``; none: ``FALSE``; some: ``PARTLY TRUE``.
- ``control_holds`` is the same rule measured on the control: the condition under which the answer
  should come out the other way (an untrained model, shuffled order, uniform attention, the model
  without the part in question). Every part's control must give the opposite outcome at every seed;
  if it does not, the experiment cannot tell the two cases apart and the verdict is ``INCONCLUSIVE``.

The printed block has a ``Measured:`` paragraph with the numbers. In CI nbval compares checked cells
with the patterns of ``notebooks/nbval_sanitize.cfg``, which blank that paragraph, so the quote, rule,
control outcome and verdict are compared exactly while trained decimals (which move with the CPU's
kernels and the release) are shown but not compared. ``tests/test_seed_verdicts.py`` re-runs every
notebook at ``SEED`` 1 and 2 and demands the same ``Verdict:`` lines.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import torch

Verdict = Literal["TRUE", "FALSE", "PARTLY TRUE", "NOT SUPPORTED", "INCONCLUSIVE"]
VERDICTS: tuple[str, ...] = ("TRUE", "FALSE", "PARTLY TRUE", "NOT SUPPORTED", "INCONCLUSIVE")
N_SEEDS = 3

Outcome = bool | Sequence[bool]
Holds = Outcome | Mapping[str, Outcome]
T = TypeVar("T")


def seeds_from(seed: int, n: int = N_SEEDS) -> list[int]:
    """The seeds a finding that rests on training is measured at: ``seed, seed + 1, ...``."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return [seed + k for k in range(n)]


def at_seeds(measure: Callable[[int], T], seed: int, n: int = N_SEEDS) -> list[T]:
    """``[measure(s) for s in seeds_from(seed, n)]``: run one experiment at each seed."""
    return [measure(s) for s in seeds_from(seed, n)]


def span(values: Iterable[float], fmt: str = ".2f") -> str:
    """A range over seeds for a finding: ``"0.36-0.40"`` (one value if they print the same)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("span needs at least one value")
    low, high = format(min(values), fmt), format(max(values), fmt)
    return low if low == high else f"{low} to {high}" if low.startswith("-") else f"{low}-{high}"


def _outcomes(holds: Holds, what: str) -> dict[str, list[bool]]:
    """``{part: [bool per seed]}`` from a bool, a list of bools or a dict of either."""
    parts = holds if isinstance(holds, Mapping) else {"": holds}
    if not parts:
        raise ValueError(f"{what} needs at least one part")
    out = {}
    for part, value in parts.items():
        values = [value] if isinstance(value, bool | torch.Tensor) else list(value)
        values = [bool(v) for v in values]  # numpy and torch bools too
        if not values:
            raise ValueError(f"{what}[{part!r}] is empty: give one bool per seed")
        out[str(part)] = values
    return out


def _settle(values: list[bool]) -> bool | None:
    """True / False when every seed agrees, None when they disagree."""
    return values[0] if len(set(values)) == 1 else None


def verdict_from(holds: Holds) -> Verdict:
    """The verdict of a rule's outcomes alone (no control): see the module docstring."""
    settled = [_settle(v) for v in _outcomes(holds, "holds").values()]
    if any(s is None for s in settled):
        return "NOT SUPPORTED"
    if all(settled):
        return "TRUE"
    return "FALSE" if not any(settled) else "PARTLY TRUE"


@dataclass(frozen=True)
class ClaimCheck:
    """A quoted claim, the rule that decides it, what was measured, the control, and the verdict."""

    seed: str
    quote: str
    rule: str
    finding: str
    control: str
    holds: Mapping[str, Sequence[bool]]
    control_holds: Mapping[str, Sequence[bool]]

    @property
    def n_seeds(self) -> int:
        return max(len(v) for v in self.holds.values())

    @property
    def control_verdict(self) -> Verdict:
        return verdict_from(dict(self.control_holds))

    @property
    def control_flips(self) -> bool:
        """Whether the control gives the opposite outcome for every part, at every seed."""
        return all(
            _settle(list(self.holds[p])) is not None
            and _settle(list(self.control_holds[p])) is (not _settle(list(self.holds[p])))
            for p in self.holds
        )

    @property
    def verdict(self) -> Verdict:
        verdict = verdict_from(dict(self.holds))
        if verdict == "NOT SUPPORTED":
            return verdict
        return verdict if self.control_flips else "INCONCLUSIVE"

    def _outcome_text(self, holds: Mapping[str, Sequence[bool]]) -> str:
        """ "the rule holds" or, for a claim in parts, "part a holds, part b fails"."""

        def word(values: Sequence[bool]) -> str:
            settled = _settle(list(values))
            return "holds" if settled else "fails" if settled is False else "differs by seed"

        if list(holds) == [""]:
            return f"the rule {word(holds[''])}"
        return ", ".join(f"{part} {word(v)}" for part, v in holds.items())

    def __str__(self) -> str:
        wrap = lambda text, indent: textwrap.fill(  # noqa: E731
            text, width=96, initial_indent=indent, subsequent_indent=" " * len(indent)
        )
        verdict = self.verdict
        seeds = f"the same at {self.n_seeds} seeds" if self.n_seeds > 1 else "1 measurement"
        why = {
            "NOT SUPPORTED": "the seeds disagree",
            "INCONCLUSIVE": "the control did not come out the other way",
        }.get(verdict, seeds)
        return "\n".join(
            [
                wrap(f'"{self.quote}"', f"Claim (seed {self.seed}): "),
                wrap(self.rule, "Rule: "),
                wrap(self.finding, "Measured: "),
                wrap(f"{self.control}: {self._outcome_text(self.control_holds)}", "Control: "),
                wrap(f"{self._outcome_text(self.holds)} ({why})", "Outcome: "),
                f"Verdict: {verdict}",
            ]
        )


def claim_check(
    *,
    seed: str,
    quote: str,
    rule: str,
    holds: Holds,
    control: str,
    control_holds: Holds,
    finding: str,
) -> ClaimCheck:
    """Decide a claim by a stated rule, print the check and return it.

    Args:
        seed: which article, e.g. ``"002"``.
        quote: the article's words, verbatim (shortened with "..." where needed).
        rule: one line, what has to be measured for the claim to hold ("holds if ...").
        holds: the rule's outcome: a bool, one bool per seed, or ``{part: bool or list}``.
        control: the condition under which the outcome should come out the other way.
        control_holds: the rule's outcome on the control, shaped like ``holds`` (same parts).
        finding: the measured numbers behind the outcomes (printed, not compared by nbval).
    """
    for name, text in (
        ("quote", quote),
        ("rule", rule),
        ("control", control),
        ("finding", finding),
    ):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"a claim check needs a non-empty {name}")
    claim, ctrl = _outcomes(holds, "holds"), _outcomes(control_holds, "control_holds")
    if set(claim) != set(ctrl):
        raise ValueError(
            f"control_holds must have the same parts as holds: {sorted(claim)} vs {sorted(ctrl)}"
        )
    check = ClaimCheck(
        seed=seed,
        quote=quote.strip(),
        rule=rule.strip(),
        finding=finding.strip(),
        control=control.strip(),
        holds=claim,
        control_holds=ctrl,
    )
    print(check)
    return check


def compare(
    name: str,
    ours: torch.Tensor,
    reference: torch.Tensor,
    *,
    atol: float = 1e-5,
    quiet: bool = False,
) -> bool:
    """Compare a hand-made tensor with PyTorch's own: print exact / close / max difference.

    Returns whether they are close (``|ours - reference| <= atol`` everywhere). Shapes must match.
    """
    if ours.shape != reference.shape:
        raise ValueError(
            f"{name}: shapes differ, ours {tuple(ours.shape)} vs reference {tuple(reference.shape)}"
        )
    diff = (ours.detach().double() - reference.detach().double()).abs()
    max_diff = diff.max().item() if diff.numel() else 0.0
    exact = bool(torch.equal(ours.detach(), reference.detach()))
    close = max_diff <= atol
    if not quiet:
        print(
            f"{name:<28} exact: {str(exact):<5} close (atol={atol:g}): {str(close):<5} "
            f"max diff: {_small(max_diff, atol)}"
        )
    return close


def _small(value: float, atol: float) -> str:
    """A difference printed stably: below tolerance it reads '< atol', so runs print the same."""
    return "0" if value == 0 else (f"< {atol:g}" if value <= atol else f"{value:.2e}")
