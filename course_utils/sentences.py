"""The grammar of a generated market-news sentiment set (seeded, no download) where word order matters.

Sentences are short market-news lines built from clauses such as "profits did not fall" or "debt rose
sharply", labelled by rule:

* a clause's sentiment = (is the subject good when it goes up?) x (did it go up?) x (negated?);
  "profits did not fall" is good news, "revenue did not rise" is bad news, and "costs fell" (a
  subject that is good news when it falls, in one clause of five) is good news;
* contrast: in "A, but B" and "although A, B" the clause after the contrast word decides (B);
* intensity: in "A, while B" with opposite clauses, the more intense clause decides
  (``sharply`` > no adverb > ``slightly``; ties are never generated).

So a bag of words is not enough: "profits rose, but costs rose sharply" and "costs rose sharply, but
profits rose" hold the same words and have opposite labels. Every sentence also records its *kind*
(``plain``, ``negation``, ``contrast``, ``intensity``) so a notebook can report accuracy per kind.

Labels: ``0`` = negative, ``1`` = positive. The data set split for training is
:func:`course_utils.tasks.sentiment_task`; this module is the grammar that makes its sentences.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

#: Subjects that are good news when they go up (+1) or when they go down (-1).
SUBJECTS: dict[str, int] = {
    "profits": +1,
    "revenue": +1,
    "sales": +1,
    "earnings": +1,
    "margins": +1,
    "orders": +1,
    "demand": +1,
    "the share price": +1,
    "dividends": +1,
    "exports": +1,
    "costs": -1,
    "debt": -1,
    "losses": -1,
    "inflation": -1,
    "layoffs": -1,
    "defaults": -1,
    "interest rates": -1,
    "inventories": -1,
}
#: Verbs as (past tense, base form after "did not"), by direction.
UP_VERBS: tuple[tuple[str, str], ...] = (
    ("rose", "rise"),
    ("climbed", "climb"),
    ("grew", "grow"),
    ("jumped", "jump"),
    ("increased", "increase"),
    ("went up", "go up"),
)
DOWN_VERBS: tuple[tuple[str, str], ...] = (
    ("fell", "fall"),
    ("dropped", "drop"),
    ("declined", "decline"),
    ("slipped", "slip"),
    ("shrank", "shrink"),
    ("decreased", "decrease"),
)
#: Intensity adverbs and their strength (no adverb is 1).
ADVERBS: dict[str, int] = {"sharply": 2, "strongly": 2, "slightly": 0, "modestly": 0}
COMPANIES: tuple[str, ...] = (
    "Acme",
    "Globex",
    "Initech",
    "Northwind",
    "Contoso",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Stark",
    "Wayne",
    "Tyrell",
)
PERIODS: tuple[str, ...] = (
    "this quarter",
    "last year",
    "in March",
    "in the first half",
    "over the summer",
    "this month",
)
KINDS: tuple[str, ...] = ("plain", "negation", "contrast", "intensity")
#: Share of clauses whose subject is good news when it falls (costs, debt, ...).
INVERSE_SHARE = 0.2


@dataclass(frozen=True)
class Clause:
    """One generated clause and the facts its label follows from."""

    text: str
    subject: str
    sentiment: int  # +1 good news, -1 bad news
    negated: bool
    strength: int  # 0 slightly/modestly, 1 no adverb, 2 sharply/strongly


def make_clause(
    rng: random.Random, *, negated: bool | None = None, strength: int | None = None
) -> Clause:
    """A random clause such as ``"Acme's debt did not rise"``; ``negated``/``strength`` can be forced.

    Negated clauses take no adverb ("did not rise sharply" is ambiguous), so their strength is 1.
    """
    # most subjects are good news when they rise; "costs fell" (good news) is the rarer case
    inverse = rng.random() < INVERSE_SHARE
    subject = rng.choice([k for k, v in sorted(SUBJECTS.items()) if v == (-1 if inverse else 1)])
    up = rng.random() < 0.5
    past, base = rng.choice(UP_VERBS if up else DOWN_VERBS)
    negated = rng.random() < 0.3 if negated is None else negated
    if strength is None:
        strength = 1 if negated else rng.choice([0, 1, 1, 2])
    if negated and strength != 1:
        raise ValueError(f"a negated clause has no adverb, so its strength is 1, got {strength}")
    if rng.random() < 0.35:  # "Acme's profits", "Acme's share price"
        subject_text = rng.choice(COMPANIES) + "'s " + subject.removeprefix("the ")
    else:
        subject_text = subject
    if negated:
        verb = f"did not {base}"
    else:
        adverb = (
            ""
            if strength == 1
            else " " + rng.choice([a for a, s in ADVERBS.items() if s == strength])
        )
        verb = past + adverb
    sentiment = SUBJECTS[subject] * (1 if up else -1) * (-1 if negated else 1)
    return Clause(f"{subject_text} {verb}", subject, sentiment, negated, strength)


def contrast(first: Clause, second: Clause, *, although: bool = False) -> tuple[str, int]:
    """Join two clauses by contrast; the second decides: ``("A, but B", sentiment of B)``."""
    text = (
        f"although {first.text}, {second.text}" if although else f"{first.text}, but {second.text}"
    )
    return text, second.sentiment


def make_sentence(rng: random.Random, kind: str) -> tuple[str, int]:
    """One sentence of ``kind`` and its label (0 negative, 1 positive), by the module's rules."""
    if kind == "plain":
        clause = make_clause(rng, negated=False)
        text, sentiment = clause.text, clause.sentiment
    elif kind == "negation":
        clause = make_clause(rng, negated=True)
        text, sentiment = clause.text, clause.sentiment
    elif kind == "contrast":
        first = make_clause(rng)
        second = make_clause(rng)  # redrawn until it is opposite news about another subject
        while second.sentiment == first.sentiment or second.subject == first.subject:
            second = make_clause(rng)
        text, sentiment = contrast(first, second, although=rng.random() >= 0.7)
    elif kind == "intensity":
        strong, weak = rng.choice([(2, 1), (2, 0), (1, 0)])
        a = make_clause(rng, negated=False, strength=strong)
        b = make_clause(rng, negated=False, strength=weak)
        while b.sentiment == a.sentiment or b.subject == a.subject:  # opposite news, two subjects
            b = make_clause(rng, negated=False, strength=weak)
        first, second = (a, b) if rng.random() < 0.5 else (b, a)
        text = f"{first.text}, while {second.text}"
        sentiment = a.sentiment  # the more intense clause decides
    else:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if rng.random() < 0.3:
        text = f"{text} {rng.choice(PERIODS)}"
    text = text[0].upper() + text[1:] + "."
    return text, int(sentiment > 0)
