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
    train_to_plateau,
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


def test_count_task_noise_flips_that_share_of_labels_so_the_bayes_rate_is_known():
    ids, clean = count_task(20_000, 12, seed=4)
    noisy_ids, noisy = count_task(20_000, 12, seed=4, noise=0.15)
    assert torch.equal(noisy_ids, ids)  # the same sequences, only labels flipped
    flipped = (noisy != clean).float().mean().item()
    assert flipped == pytest.approx(0.15, abs=0.01)  # the best possible accuracy is about 0.85
    assert torch.equal(
        count_task(50, 12, seed=4, noise=0.15)[1], count_task(50, 12, seed=4, noise=0.15)[1]
    )
    with pytest.raises(ValueError, match="flip probability"):
        count_task(10, 12, noise=0.5)


class _Memorizer(torch.nn.Module):
    """Logits from a free table per example id: learns the training set, then overfits."""

    def __init__(self, n, classes=2):
        super().__init__()
        self.table = torch.nn.Embedding(n, classes)

    def forward(self, ids):
        return self.table(ids[:, 0])


def test_train_to_plateau_stops_after_patience_and_keeps_the_best_weights():
    torch.manual_seed(0)
    x = torch.arange(40).unsqueeze(1)
    y = (torch.arange(40) % 2).long()
    model = _Memorizer(40)
    run = train_to_plateau(
        model, (x[:30], y[:30]), (x[30:], y[30:]), max_epochs=50, patience=3, lr=0.1,
        batch_size=10, seed=0,
    )  # fmt: skip
    # validation ids are never trained, so validation accuracy cannot rise after the first epoch
    assert run.best_epoch == 1 and run.epochs == 4 and run.converged
    assert len(run.val_accuracy) == 4 and not model.training
    with torch.no_grad():
        assert (model(x[30:]).argmax(-1) == y[30:]).float().mean().item() == run.val_accuracy[0]
    with pytest.raises(ValueError, match="patience >= 1"):
        train_to_plateau(
            model, (x, y), (x, y), max_epochs=1, patience=0, lr=0.1, batch_size=10, seed=0
        )


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
