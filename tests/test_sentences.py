"""Tests of course_utils.sentences (the grammar): rule-labelled, word order matters.

The data set made from it (``tasks.sentiment_task``) is tested in ``test_tasks.py``.
"""

from __future__ import annotations

import random

import pytest

from course_utils.sentences import contrast, make_clause, make_sentence


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("profits rose", 1),
        ("profits did not rise", 0),
        ("costs fell", 1),
        ("costs did not fall", 0),
        ("debt did not climb", 1),
    ],
)
def test_clause_rules(text, label):
    rng = random.Random(0)
    found = {}
    for _ in range(20000):
        c = make_clause(rng)
        found.setdefault(c.text, c.sentiment)
    assert found[text] == (1 if label else -1)


def test_contrast_follows_the_second_clause_and_intensity_the_stronger():
    rng = random.Random(1)
    for _ in range(300):
        text, label = make_sentence(rng, "contrast")
        assert ", but " in text or text.startswith("Although")
        text, label = make_sentence(rng, "intensity")
        assert ", while " in text


def test_word_order_changes_labels():
    """Same words, other order, other label: a bag of words cannot solve the contrast sentences."""
    rng = random.Random(0)
    a = make_clause(rng, negated=False)
    b = make_clause(rng, negated=False)
    while b.sentiment == a.sentiment:
        b = make_clause(rng, negated=False)
    (ab, label_ab), (ba, label_ba) = contrast(a, b), contrast(b, a)
    assert sorted(ab.replace(",", "").split()) == sorted(ba.replace(",", "").split())
    assert label_ab == b.sentiment == -label_ba


def test_bad_kind():
    with pytest.raises(ValueError, match="kind must be"):
        make_sentence(random.Random(0), "sarcasm")
