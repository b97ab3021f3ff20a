"""Claim checks and numeric comparisons: how a notebook proves what it says.

The source articles contain real errors. A claim check quotes the article, states the rule that decides
it, measures the claim and a control, and lets the rule compute the verdict: nobody types it in.

    check = claim_check(
        article="003",
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

The printed block reads ``Claim`` (the quote), ``Rule``, ``Measured`` (the numbers), ``Control
(should come out the other way)`` with the rule's outcome there, ``Outcome`` (the rule on the
claim), ``Verdict`` and ``In short`` (the verdict in one plain sentence). In CI nbval compares checked cells
with the patterns of ``notebooks/nbval_sanitize.cfg``, which blank that paragraph, so the quote, rule,
control outcome and verdict are compared exactly while trained decimals (which move with the CPU's
kernels and the release) are shown but not compared. ``tests/test_evidence.py`` re-runs every
notebook at ``SEED`` 1 and 2 and demands the same ``Verdict:`` lines, and fails on a control whose
outcome is written as a constant instead of measured.

A claim can only be judged where the task leaves room for both answers. When it does not (the rival
is already at the ceiling, so no model could beat it by the margin), pass ``testable`` (measured, one
bool per seed): where it is False the verdict is ``NOT TESTABLE`` and the block says why, never FALSE.

Helpers that make the rules easy to follow:

- :func:`majority_rate`: chance for a classifier is the majority-class rate of the split it is
  tested on, computed from the labels, never a typed-in 0.5.
- :func:`paired_bootstrap`: the mean difference of two models' per-example scores on the same test
  items, with a percentile bootstrap interval and the test size; a threshold inside the interval's
  width is noise, not a rule.
- :func:`improves`: the one rule for "X (significantly) improves Y": the paired interval of the
  rival's error minus the model's error lies above zero. Every notebook that tests such a claim uses
  it (:data:`IMPROVES_RULE`). Existence claims about attention ("allows the model to weigh the
  importance of ...") use :data:`ALLOWS_RULE` with the same decision.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import torch

Verdict = Literal["TRUE", "FALSE", "PARTLY TRUE", "NOT SUPPORTED", "INCONCLUSIVE", "NOT TESTABLE"]
VERDICTS: tuple[str, ...] = (
    "TRUE",
    "FALSE",
    "PARTLY TRUE",
    "NOT SUPPORTED",
    "INCONCLUSIVE",
    "NOT TESTABLE",
)
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
        if isinstance(value, torch.Tensor) or hasattr(value, "tolist"):
            value = value.tolist()  # a tensor or array of bools (or one bool)
        values = [value] if isinstance(value, bool) else list(value)
        values = [bool(v) for v in values]
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

    article: str
    quote: str
    rule: str
    finding: str
    control: str
    holds: Mapping[str, Sequence[bool]]
    control_holds: Mapping[str, Sequence[bool]]
    testable: Sequence[bool] | None = None
    why_untestable: str = ""

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
        if self.testable is not None and not all(self.testable):
            return "NOT TESTABLE"
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
        if self.unsettled:
            why = "the seeds disagree"
        else:
            why = f"the same at {self.n_seeds} seeds" if self.n_seeds > 1 else "1 measurement"
            if verdict == "INCONCLUSIVE":
                why += "; the control did not come out the other way"
        lines = [
            wrap(f'"{self.quote}"', f"Claim (article {self.article}): "),
            wrap(self.rule, "Rule: "),
            wrap(self.finding, "Measured: "),
            wrap(
                f"{self.control}: {self._outcome_text(self.control_holds)}",
                "Control (should come out the other way): ",
            ),
            wrap(f"{self._outcome_text(self.holds)} ({why})", "Outcome: "),
        ]
        if self.testable is not None:
            untested = sum(not t for t in self.testable)
            lines.append(
                wrap(
                    "yes, the task leaves room for both outcomes"
                    if not untested
                    else f"no at {untested} of {len(self.testable)} seeds: {self.why_untestable}",
                    "Testable: ",
                )
            )
        return "\n".join([*lines, f"Verdict: {verdict}", wrap(self.in_short, "In short: ")])

    @property
    def unsettled(self) -> list[str]:
        """The parts of the claim whose seeds disagree."""
        return [p for p, v in self.holds.items() if _settle(list(v)) is None]

    @property
    def in_short(self) -> str:
        """The verdict in one plain sentence, for a reader who skips the lines above."""
        parts = {p: _settle(list(v)) for p, v in self.holds.items()}
        held = [p for p, v in parts.items() if v]
        every = " at every seed" if self.n_seeds > 1 else ""
        failed = [p for p, v in parts.items() if v is False]
        return {
            "TRUE": f"the article is right here: the rule holds{every} and fails on the control, "
            "so it could have failed.",
            "FALSE": f"the article is wrong here: the rule fails{every}, while on the control it "
            "holds, so it could have held.",
            "PARTLY TRUE": f"the article is partly right: {', '.join(held)} "
            f"{'holds' if len(held) == 1 else 'hold'}; {', '.join(failed)} "
            f"{'fails' if len(failed) == 1 else 'fail'}.",
            "NOT SUPPORTED": "the seeds disagree, so these measurements support neither answer"
            + ("." if self.unsettled == [""] else f" for {', '.join(self.unsettled)}."),
            "INCONCLUSIVE": "the control did not come out the other way, so this experiment "
            "cannot tell a true claim from a false one.",
            "NOT TESTABLE": "this task leaves no room for both outcomes, so the claim is not "
            "judged here.",
        }[self.verdict]


def claim_check(
    *,
    article: str,
    quote: str,
    rule: str,
    holds: Holds,
    control: str,
    control_holds: Holds,
    finding: str,
    testable: bool | Sequence[bool] | None = None,
    why_untestable: str = "",
) -> ClaimCheck:
    """Decide a claim by a stated rule, print the check and return it.

    Args:
        article: which source article, e.g. ``"002"`` (``seed`` in this course means a random seed).
        quote: the article's words, verbatim (shortened with "..." where needed).
        rule: one line, what has to be measured for the claim to hold ("holds if ...").
        holds: the rule's outcome: a bool, one bool per seed, or ``{part: bool or list}``.
        control: the condition under which the outcome should come out the other way.
        control_holds: the rule's outcome on the control, shaped like ``holds`` (same parts).
        finding: the measured numbers behind the outcomes (printed, not compared by nbval).
        testable: measured, one bool per seed: whether the task leaves room for both outcomes (e.g.
            the rival is far enough below the ceiling for the claimed margin). Any False gives
            ``NOT TESTABLE`` instead of a verdict; ``None`` (default) when room is not in doubt.
        why_untestable: what leaves no room (printed when ``testable`` has a False).
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
    n_seeds = max(len(v) for v in [*claim.values(), *ctrl.values()])
    uneven = {
        f"{what}[{part!r}]": len(v)
        for what, outcomes in (("holds", claim), ("control_holds", ctrl))
        for part, v in outcomes.items()
        if len(v) not in (1, n_seeds)
    }
    if uneven:
        raise ValueError(
            f"measure the claim and its control at the same {n_seeds} seeds (or give one value for "
            f"a fact that does not depend on the seed); got {uneven}"
        )
    room = None
    if testable is not None:
        room = [bool(t) for t in ([testable] if isinstance(testable, bool) else testable)]
        if not room:
            raise ValueError("testable is empty: give one bool per seed")
        if not all(room) and not why_untestable.strip():
            raise ValueError("say in why_untestable what leaves the task no room for both outcomes")
    if room is not None and len(room) not in (1, max(len(v) for v in claim.values())):
        raise ValueError(
            f"testable has {len(room)} values but the claim was measured at "
            f"{max(len(v) for v in claim.values())} seeds: give one per seed"
        )
    if not re.fullmatch(r"\d{3}", str(article)):
        raise ValueError(
            f'article must be the article\'s three digits, e.g. "002", got {article!r}'
        )
    check = ClaimCheck(
        article=article,
        quote=quote.strip(),
        rule=rule.strip(),
        finding=finding.strip(),
        control=control.strip(),
        holds=claim,
        control_holds=ctrl,
        testable=room,
        why_untestable=why_untestable.strip(),
    )
    if room is not None and not all(room) and check.control_flips:
        raise ValueError(
            "testable says the task leaves no room, but the control came out the other way: "
            "the task has room for both outcomes, so the verdict stands; drop testable= or "
            "measure room where the rule really cannot move"
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


def majority_rate(labels: torch.Tensor | Sequence[int]) -> float:
    """Chance for a classifier: the share of the most common label in ``labels`` (a split's targets).

    Always-predict-the-majority scores exactly this, so an accuracy means something only above it.
    Compute it on the split the accuracy is measured on (and on each group that is reported).
    """
    labels = torch.as_tensor(labels).reshape(-1)
    if labels.numel() == 0:
        raise ValueError("majority_rate needs at least one label")
    if labels.is_floating_point():
        raise ValueError(f"majority_rate takes class labels (integers), got dtype {labels.dtype}")
    _, counts = torch.unique(labels.cpu(), return_counts=True)
    return counts.max().item() / labels.numel()


@dataclass(frozen=True)
class PairedDifference:
    """Mean of ``a - b`` over paired test items, with a bootstrap interval and the test size."""

    mean: float
    low: float
    high: float
    n: int
    level: float

    @property
    def above_zero(self) -> bool:
        """The whole interval is above 0: ``a`` is larger than ``b`` beyond resampling noise."""
        return self.low > 0

    @property
    def below_zero(self) -> bool:
        return self.high < 0

    def format(self, fmt: str = "+.3f") -> str:
        pct = f"{100 * self.level:g} %"
        return (
            f"{format(self.mean, fmt)} ({pct} interval {format(self.low, fmt)} to "
            f"{format(self.high, fmt)}, n={self.n})"
        )

    def __str__(self) -> str:
        return self.format()


def paired_bootstrap(
    a: torch.Tensor | Sequence[float],
    b: torch.Tensor | Sequence[float],
    *,
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> PairedDifference:
    """How much ``a`` exceeds ``b`` on the same test items, and how sure that is.

    ``a`` and ``b`` are per-item scores of two models on the *same* test items in the same order
    (0/1 correctness, or per-item losses). Resampling the items (with replacement) keeps each pair
    together, so the interval reflects the test set's size and the items' difficulty, not just the
    two means. Uses its own generator (``seed``), so the caller's random state is untouched and the
    interval is the same on every run.
    """
    a_t = torch.as_tensor(a, dtype=torch.float64).detach().reshape(-1).cpu()
    b_t = torch.as_tensor(b, dtype=torch.float64).detach().reshape(-1).cpu()
    if a_t.shape != b_t.shape:
        raise ValueError(
            f"paired_bootstrap needs one score per test item for both models, got {a_t.numel()} "
            f"and {b_t.numel()} items: score both on the same test set"
        )
    if a_t.numel() < 2:
        raise ValueError(f"paired_bootstrap needs at least 2 test items, got {a_t.numel()}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, e.g. 0.95, got {level}")
    if not (torch.isfinite(a_t).all() and torch.isfinite(b_t).all()):
        raise ValueError(
            "paired_bootstrap got a NaN or infinite score: a diverged model or a log of 0; "
            "fix the scores (clip probabilities, drop the diverged run and say so) first"
        )
    diff = a_t - b_t
    gen = torch.Generator().manual_seed(seed)
    chunk = max(1, 2_000_000 // diff.numel())  # resample in chunks: bounded memory for large n
    means = torch.cat(
        [
            diff[
                torch.randint(
                    0, diff.numel(), (min(chunk, n_resamples - k), diff.numel()), generator=gen
                )
            ].mean(dim=1)
            for k in range(0, n_resamples, chunk)
        ]
    )
    tail = (1 - level) / 2
    low, high = torch.quantile(means, torch.tensor([tail, 1 - tail], dtype=torch.float64)).tolist()
    return PairedDifference(diff.mean().item(), low, high, diff.numel(), level)


IMPROVES_RULE = (
    "holds if the paired bootstrap 95 % interval of (rival's test error - model's test error), "
    "over the same test items, lies above 0, at every seed"
)
MIN_TEST_ITEMS = 30

ALLOWS_RULE = (
    "holds if, on a task where some steps matter more than others, the model with learned attention "
    "improves on the same model trained with uniform attention (paired bootstrap 95 % interval of the "
    "error difference above 0), at every seed"
)
"""The one rule for an existence claim about attention ("allows / can weigh the importance of ...").

An existence claim is TRUE when one fair task shows it. Its control is the same comparison on a task
where every step matters equally: there the uniform-attention rival loses nothing and the rule fails.
"""


def mcnemar_p(model_wrong: torch.Tensor, rival_wrong: torch.Tensor) -> float:
    """One-sided exact McNemar p-value that the model errs less often than the rival (0/1 errors).

    Only the discordant items count: ``b`` where the rival is wrong and the model right, ``c`` the
    other way; under "no difference" ``b`` is Binomial(b + c, 1/2).
    """
    b = int(((rival_wrong == 1) & (model_wrong == 0)).sum())
    c = int(((rival_wrong == 0) & (model_wrong == 1)).sum())
    n = b + c
    if n == 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(b, n + 1)) / 2**n


TWIN_RUNS = (
    "; and its low end lies above the gap between two runs of the rival that differ only in their "
    "initial weights (run-to-run noise)"
)
"""Append to :data:`IMPROVES_RULE` / :data:`ALLOWS_RULE` when ``noise_floor=`` is passed."""


def run_to_run_gap(
    run_errors: torch.Tensor | Sequence[float], twin_errors: torch.Tensor | Sequence[float]
) -> float:
    """How far apart two runs of the same model (other initial weights) can land: the noise floor.

    The paired interval of :func:`improves` resamples test items, not training runs, so two twins of
    one architecture can differ "significantly" on their own. The largest end (in absolute value)
    of the twins' paired 95 % interval is the gap a real improvement has to clear.
    """
    gap = paired_bootstrap(run_errors, twin_errors, n_resamples=10_000)
    return max(abs(gap.low), abs(gap.high))


def improves(
    model_errors: torch.Tensor | Sequence[float],
    rival_errors: torch.Tensor | Sequence[float],
    *,
    noise_floor: float = 0.0,
) -> tuple[bool, PairedDifference]:
    """The course's one rule for "X improves on Y": the rival's error minus the model's, paired.

    Errors are per test item, lower is better: squared error, cross-entropy, or ``1 - correct``
    (pass errors, not accuracies: the sign matters). Returns whether the whole 95 % interval of the
    rival's minus the model's error is above 0, and the interval to print (:data:`IMPROVES_RULE`).
    For 0/1 errors the exact one-sided McNemar test must agree (p < 0.025), because the percentile
    bootstrap is too generous when only a handful of items differ. Resampling uses a fixed generator
    and 10,000 resamples, so the decision cannot be shopped for by changing a seed. Failing the rule
    means the improvement was not shown at this test size: print the interval, whose upper end says
    how large an improvement the data still allow.

    ``noise_floor`` (from :func:`run_to_run_gap` on two runs of the rival) raises the bar from 0 to
    the run-to-run gap; state it in the rule with :data:`TWIN_RUNS`.
    """
    if noise_floor < 0:
        raise ValueError(f"noise_floor is a gap, so >= 0; got {noise_floor}")
    model_t = torch.as_tensor(model_errors, dtype=torch.float64).detach().reshape(-1).cpu()
    rival_t = torch.as_tensor(rival_errors, dtype=torch.float64).detach().reshape(-1).cpu()
    if model_t.numel() < MIN_TEST_ITEMS:
        raise ValueError(
            f"improves needs at least {MIN_TEST_ITEMS} test items per model, got {model_t.numel()}: "
            "enlarge the generated test set"
        )
    diff = paired_bootstrap(rival_t, model_t, n_resamples=10_000)
    shown = diff.low > noise_floor
    binary = bool(
        ((model_t == 0) | (model_t == 1)).all() and ((rival_t == 0) | (rival_t == 1)).all()
    )
    if binary:
        shown = shown and mcnemar_p(model_t, rival_t) < 0.025
    return shown, diff
