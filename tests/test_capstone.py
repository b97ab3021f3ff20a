"""Notebook 10's tasks and measurements (``course_utils.capstone``)."""

from __future__ import annotations

import pytest
import torch

from course_utils.capstone import (
    COUNT_AT_LEAST,
    FIRST,
    MARKS,
    SECOND,
    VOCAB_SIZE,
    count_task,
    focus_ratio,
    marked_share,
    marker_task,
    token_names,
)


def test_marker_task_labels_the_symbol_after_the_mark_the_two_halves_name():
    ids, labels, marks = marker_task(500, 12, seed=3)
    assert ids.shape == (500, 12) and labels.shape == marks.shape == (500,)
    assert int(ids.max()) < VOCAB_SIZE and int(ids.min()) > 0  # no padding
    a, b = ids[:, 0] - FIRST[0], ids[:, -1] - SECOND[0]
    assert set(a.tolist()) == set(b.tolist()) == {0, 1}
    rows = torch.arange(500)
    assert torch.equal(ids[rows, marks], torch.tensor(MARKS)[2 * a + b])  # the wanted mark
    assert torch.equal(labels, ids[rows, marks + 1] - 9)  # the symbol right after it
    for mark in MARKS:  # every sequence holds each mark once, never followed by a mark
        at = ids == mark
        assert torch.equal(at.sum(1), torch.ones(500, dtype=torch.long))
        assert not torch.isin(ids[:, 1:][at[:, :-1]], torch.tensor(MARKS)).any()
    assert set(labels.tolist()) == {0, 1, 2, 3}
    assert torch.equal(marker_task(500, 12, seed=3)[0], ids)  # seeded


def test_count_task_counts_every_step_alike():
    ids, labels = count_task(400, 12, seed=1)
    count = (ids[:, 1:-1] == 9).sum(1)
    assert torch.equal(labels, (count >= COUNT_AT_LEAST).long())
    assert not torch.isin(ids, torch.tensor(MARKS)).any()
    assert 0.2 < labels.float().mean() < 0.8  # both classes common


@pytest.mark.parametrize(("n", "seq_len"), [(0, 12), (5, 9)])
def test_tasks_reject_sizes_without_room(n, seq_len):
    with pytest.raises(ValueError, match="need n >= 1"):
        marker_task(n, seq_len)


def test_token_names_are_readable():
    ids, _, _ = marker_task(1, 12, seed=0)
    names = token_names(ids)[0]
    assert names[0] in {"[A0]", "[A1]"} and names[-1] in {"[B0]", "[B1]"}
    assert sorted(n for n in names if n.startswith("[M")) == ["[M0]", "[M1]", "[M2]", "[M3]"]


def test_marked_share_and_focus_ratio():
    weights = torch.full((3, 2, 1, 8), 1 / 8)  # uniform: focus ratio 1
    marks = torch.tensor([1, 3, 5])
    assert torch.allclose(marked_share(weights, marks), torch.full((3, 2), 2 / 8))
    assert focus_ratio(weights, marks) == pytest.approx(1.0)
    focused = torch.zeros(3, 2, 1, 8)
    focused[torch.arange(3), 1, 0, marks] = 1.0  # head 1 puts everything on the mark
    assert torch.equal(marked_share(focused, marks)[:, 1], torch.ones(3))
    assert focus_ratio(focused, marks) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="one mark position per example"):
        marked_share(weights, marks[:2])


def test_marked_share_lives_on_the_device_of_the_weights():
    # the course's device rule: what a helper creates lives on its inputs' device (meta = no GPU)
    weights = torch.empty(4, 2, 1, 8, device="meta")
    assert marked_share(weights, torch.tensor([1, 2, 3, 4])).device.type == "meta"
