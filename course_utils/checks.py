"""Claim checks and numeric comparisons: how a notebook proves what it says.

The seed articles contain real errors. A claim check quotes the article, runs an experiment and prints
a verdict; the printed block is what nbval compares, so a verdict that changes fails CI.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Literal

import torch

Verdict = Literal["TRUE", "FALSE", "PARTLY TRUE", "NOT SUPPORTED"]
VERDICTS: tuple[str, ...] = ("TRUE", "FALSE", "PARTLY TRUE", "NOT SUPPORTED")


@dataclass(frozen=True)
class ClaimCheck:
    """A quoted claim, what the experiment found, and the verdict."""

    seed: str
    quote: str
    finding: str
    verdict: Verdict

    def __str__(self) -> str:
        wrap = lambda text, indent: textwrap.fill(  # noqa: E731
            text, width=96, initial_indent=indent, subsequent_indent=" " * len(indent)
        )
        return "\n".join(
            [
                wrap(f'"{self.quote}"', f"Claim (seed {self.seed}): "),
                wrap(self.finding, "Finding: "),
                f"Verdict: {self.verdict}",
            ]
        )


def claim_check(*, seed: str, quote: str, finding: str, verdict: Verdict) -> ClaimCheck:
    """Print and return a claim check.

    Args:
        seed: which article, e.g. ``"002"``.
        quote: the article's words, verbatim (shortened with "..." where needed).
        finding: what the experiment measured, with its numbers (rounded, so the text is stable).
        verdict: one of ``"TRUE"``, ``"FALSE"``, ``"PARTLY TRUE"``, ``"NOT SUPPORTED"``.
    """
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    if not quote.strip() or not finding.strip():
        raise ValueError("a claim check needs the quoted claim and the finding")
    check = ClaimCheck(seed=seed, quote=quote.strip(), finding=finding.strip(), verdict=verdict)
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
