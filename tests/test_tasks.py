"""course_utils.tasks: every synthetic task of the course, seeded, shaped, one field order."""

from __future__ import annotations

import dataclasses
import inspect
import math

import pytest
import torch

from course_utils import tasks
from course_utils.checks import majority_rate
from course_utils.masks import lengths_to_mask, padding_mask
from course_utils.sentences import KINDS
from course_utils.tasks import (
    COUNT_AT_LEAST,
    FIRST,
    MARKS,
    SECOND,
    VOCAB_SIZE,
    adding_problem,
    count_task,
    duplicate_task,
    long_gap_adding_problem,
    majority_task,
    make_series,
    make_windows,
    marked_token_task,
    marked_value_task,
    marker_task,
    next_token_floor,
    next_token_task,
    pad_to_lengths,
    padded_adding_problem,
    sentiment_task,
    split,
    sum_task,
    symbol_task,
    token_names,
)

# Every function that makes a task, with small arguments.
TASK_CALLS = {
    "adding_problem": lambda: adding_problem(6, 8, seed=1),
    "long_gap_adding_problem": lambda: long_gap_adding_problem(6, 30, seed=1),
    "padded_adding_problem": lambda: padded_adding_problem(6, 10, seed=1),
    "sum_task": lambda: sum_task(6, 8, seed=1),
    "symbol_task": lambda: symbol_task(6, 5, seed=1),
    "majority_task": lambda: majority_task(6, 5, seed=1),
    "make_windows": lambda: make_windows(make_series(2, 20), window=4),
    "marked_value_task": lambda: marked_value_task(6, 8, min_len=3, seed=1),
    "marked_token_task": lambda: marked_token_task(6, 7, 5, seed=1),
    "next_token_task": lambda: next_token_task(6, 7, 5, seed=1),
    "duplicate_task": lambda: duplicate_task(6, 7, 5, seed=1),
    "marker_task": lambda: marker_task(6, seed=1),
    "count_task": lambda: count_task(6, seed=1),
}


def test_every_task_is_a_frozen_dataclass_whose_first_fields_are_x_and_y():
    task_classes = {
        name for name, c in vars(tasks).items() if inspect.isclass(c) and issubclass(c, tasks.Task)
    }
    made_here = {  # every public function of tasks.py annotated to return a task
        name
        for name, f in vars(tasks).items()
        if inspect.isfunction(f)
        and f.__module__ == tasks.__name__
        and not name.startswith("_")
        and inspect.signature(f).return_annotation in task_classes
    }
    assert made_here == set(TASK_CALLS), "add the new task to TASK_CALLS"
    for name, call in TASK_CALLS.items():
        task = call()
        assert dataclasses.is_dataclass(task) and isinstance(task, tasks.Task), name
        assert [f.name for f in dataclasses.fields(task)][:2] == ["x", "y"], name
        inputs = (task.x, task.lengths) if isinstance(task, tasks.PaddedTask) else (task.x,)
        assert task.tensors == (*inputs, task.y), name
        with pytest.raises(dataclasses.FrozenInstanceError):
            task.x = None
        fields = [f.name for f in dataclasses.fields(task)]
        if "lengths" in fields:
            assert fields.index("lengths") == 2, name


def test_tasks_slice_every_field_and_refuse_tuple_unpacking():
    task = padded_adding_problem(10, 8, seed=0)
    head = task[:3]
    assert type(head) is type(task) and len(head) == 3
    for f in dataclasses.fields(task):
        assert torch.equal(getattr(head, f.name), getattr(task, f.name)[:3])
    picked = task[torch.tensor([4, 1])]
    assert torch.equal(picked.positions, task.positions[[4, 1]])
    with pytest.raises(TypeError, match="not a tuple"):
        x, y = task
    with pytest.raises(TypeError, match="task.x"):
        task[0]


def test_data_is_seeded_shaped_and_leaves_global_state_alone():
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    task = adding_problem(50, 20, seed=1)
    x, y = task.x, task.y
    assert torch.equal(torch.random.get_rng_state(), before)
    again = adding_problem(50, 20, seed=1)
    assert torch.equal(x, again.x) and torch.equal(y, again.y)
    assert x.shape == (50, 20, 2) and y.shape == (50,)
    markers = x[..., 1]
    assert torch.equal(markers.sum(1), torch.full((50,), 2.0))
    assert torch.all(markers[:, :10].sum(1) == 1) and torch.all(markers[:, 10:].sum(1) == 1)
    assert torch.allclose((x[..., 0] * markers).sum(1), y)


def test_symbol_tasks_and_windows():
    task = symbol_task(8, 5, vocab_size=6, task="reverse", seed=0)
    assert torch.equal(task.y, task.x.flip(1)) and task.x.min() >= 1 and task.x.max() <= 5
    task = symbol_task(8, 5, task="copy")
    assert torch.equal(task.x, task.y)
    series = torch.arange(20.0).view(2, 10)
    windows = make_windows(series, window=4, horizon=2)
    assert windows.x.shape == (10, 4, 1) and windows.y.shape == (10, 2)
    assert torch.equal(windows.x[0, :, 0], torch.tensor([0.0, 1, 2, 3]))
    assert torch.equal(windows.y[0], torch.tensor([4.0, 5]))
    with pytest.raises(ValueError, match="exceeds the series length"):
        make_windows(series, window=9, horizon=2)


def test_series_kinds_and_errors():
    periodic = make_series(4, 50, kind="periodic", seed=0)
    walk = make_series(4, 50, kind="random_walk", seed=0)
    assert periodic.shape == walk.shape == (4, 50)
    assert periodic.abs().max() < 3  # bounded sines plus small noise
    with pytest.raises(ValueError, match="kind must be"):
        make_series(2, 10, kind="sawtooth")
    splits = tasks.forecasting_task(n_series=20, length=60, window=12, horizon=3)
    assert splits.train[0].shape[1:] == (12, 1) and splits.test[1].shape[1:] == (3,)


def test_split_and_padding():
    x = torch.arange(100.0)
    parts = split(x, x * 2, seed=0)
    assert parts.sizes() == {"train": 70, "val": 15, "test": 15}
    all_x = torch.cat([parts.train[0], parts.val[0], parts.test[0]])
    assert torch.equal(all_x.sort().values, x)
    assert torch.equal(parts.train[1], parts.train[0] * 2)
    with pytest.raises(ValueError, match="same length"):
        split(x, x[:5])
    seqs = torch.ones(3, 4, 2)
    padded = pad_to_lengths(seqs, torch.tensor([4, 2, 1]))
    assert padded[:, :, 0].sum(1).tolist() == [4, 2, 1]
    with pytest.raises(ValueError, match="lengths must lie"):
        pad_to_lengths(seqs, torch.tensor([5, 1, 1]))


def test_sum_task_targets_are_sums_and_seeded():
    before = torch.random.get_rng_state()
    task = sum_task(64, 10, seed=3)
    x, y = task.x, task.y
    assert torch.equal(torch.random.get_rng_state(), before)
    assert x.shape == (64, 10, 1) and y.shape == (64,)
    assert torch.allclose(y, x.sum(dim=(1, 2)) / 10**0.5)
    again = sum_task(64, 10, seed=3)
    assert torch.equal(x, again.x) and torch.equal(y, again.y)
    recent = sum_task(64, 10, last=2, seed=3).y
    assert torch.allclose(recent, (x[:, -1, 0] + x[:, -2, 0]) / 2**0.5)
    with pytest.raises(ValueError, match="last"):
        sum_task(4, 10, last=11)


# -- the long-gap adding problem (notebook 01) ----------------------------------------------------
def test_long_gap_marks_lie_in_the_windows_and_target_is_their_sum():
    task = long_gap_adding_problem(300, 120, window=10, seed=3)
    x = task.x
    marks = x[..., 1].nonzero()
    first, second = marks[::2, 1], marks[1::2, 1]
    assert x.shape == (300, 120, 2) and (x[..., 1].sum(1) == 2).all()
    assert first.max() < 10 and second.min() >= 110 and (second - first).min() >= 101
    assert torch.allclose((x[..., 0] * x[..., 1]).sum(1), task.y)


def test_long_gap_is_seeded_and_validated():
    a = long_gap_adding_problem(4, 30, seed=1).x
    b = long_gap_adding_problem(4, 30, seed=1).x
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="window"):
        long_gap_adding_problem(4, 10, window=6)


# -- the padded adding problem (notebook 05) ------------------------------------------------------
def test_padded_adding_problem_is_seeded_and_correct():
    task = padded_adding_problem(200, 20, seed=4)
    x, y, lengths, pos = task.x, task.y, task.lengths, task.positions
    assert torch.equal(x, padded_adding_problem(200, 20, seed=4).x)
    assert x.shape == (200, 20, 2) and lengths.shape == y.shape == (200,) and pos.shape == (200, 2)
    assert int(lengths.min()) >= 10 and int(lengths.max()) <= 20
    rows = torch.arange(200)
    half = lengths // 2
    assert (
        torch.all(pos[:, 0] < half)
        and torch.all(pos[:, 1] >= half)
        and torch.all(pos[:, 1] < lengths)
    )
    assert torch.all(x[..., 1].sum(dim=1) == 2)
    torch.testing.assert_close(y, x[rows, pos[:, 0], 0] + x[rows, pos[:, 1], 0])
    pad = ~lengths_to_mask(lengths, 20)
    assert torch.all(x[pad] == 0)
    with pytest.raises(ValueError, match="min_len"):
        padded_adding_problem(5, 10, min_len=11)


def test_mean_target_is_the_average_of_the_real_values_with_the_same_inputs():
    task = padded_adding_problem(50, 12, seed=3)
    mean = padded_adding_problem(50, 12, seed=3, target="mean")
    assert torch.equal(task.x, mean.x) and torch.equal(task.lengths, mean.lengths)
    assert torch.equal(task.positions, mean.positions)
    expected = torch.stack([task.x[i, : task.lengths[i], 0].mean() for i in range(50)])
    torch.testing.assert_close(mean.y, expected)
    assert not torch.allclose(task.y, mean.y)
    with pytest.raises(ValueError, match="target"):
        padded_adding_problem(5, 10, target="max")


# -- majority (notebook 06) -----------------------------------------------------------------------
def test_majority_task():
    task = majority_task(200, 5, seed=1)
    src, tgt = task.x, task.y
    assert src.shape == (200, 5) and tgt.shape == (200, 1) and tgt.dtype == torch.long
    assert set(src.unique().tolist()) == {1, 2}
    expected = torch.where((src == 2).sum(1) >= 3, 2, 1)
    assert torch.equal(tgt[:, 0], expected)
    assert torch.equal(majority_task(200, 5, seed=1).x, src)
    with pytest.raises(ValueError, match="odd seq_len"):
        majority_task(10, 4)


def test_noisy_majority_flips_labels_at_the_bayes_rate():
    clean = majority_task(4000, 7, seed=2)
    noisy = majority_task(4000, 7, noise=0.15, seed=2)
    assert torch.equal(noisy.x, clean.x)  # the same sources; only labels flip
    assert set(noisy.y.unique().tolist()) == {1, 2}
    flipped = (noisy.y != clean.y).float().mean().item()
    assert abs(flipped - 0.15) < 0.02  # the true majority errs at the noise rate: the Bayes error
    assert torch.equal(majority_task(4000, 7, noise=0.15, seed=2).y, noisy.y)  # seeded
    for bad in (-0.1, 0.5):
        with pytest.raises(ValueError, match="flip probability"):
            majority_task(10, 3, noise=bad)


# -- the tasks of seed 003's designs (notebook 07) ------------------------------------------------
def test_marked_value_task():
    task = marked_value_task(50, 10, min_len=4, seed=3)
    x, y, lengths = task.x, task.y, task.lengths
    assert x.shape == (50, 10, 2) and y.shape == (50, 10) and lengths.shape == (50,)
    pad = padding_mask(lengths, 10)
    assert torch.isnan(y[pad]).all() and not torch.isnan(y[~pad]).any()
    assert torch.equal(x[:, :, 1].sum(dim=1), torch.ones(50))  # exactly one marker
    marked = x[:, :, 1].argmax(dim=1)
    assert torch.all(marked < lengths)  # the marker sits on a real step
    torch.testing.assert_close(y[:, 0], x[torch.arange(50), marked, 0])
    assert torch.equal(x[pad], torch.zeros_like(x[pad]))
    assert torch.equal(x, marked_value_task(50, 10, min_len=4, seed=3).x)


def test_next_token_task_and_its_floor():
    task = next_token_task(40, 9, 7, seed=1)
    inputs, targets = task.x, task.y
    assert inputs.shape == targets.shape == (40, 9)
    assert torch.equal(inputs[:, 1:], targets[:, :-1])
    seq = torch.cat([inputs, targets[:, -1:]], dim=1)  # (40, 10) s_0 .. s_9
    assert torch.equal(seq[:, 1::2], (seq[:, 0::2] + 1) % 7)
    assert next_token_floor(9, 7) == pytest.approx(4 * math.log(7) / 9)
    assert next_token_floor(20, 16) == pytest.approx(0.5 * math.log(16))


def test_duplicate_task_labels_match_brute_force():
    task = duplicate_task(30, 6, 4, seed=2)
    assert task.x.shape == (30, 6, 4) and torch.equal(task.x.argmax(-1), task.tokens)
    for b in range(30):
        row = task.tokens[b].tolist()
        assert task.y[b].tolist() == [float(row.count(t) > 1) for t in row]


def test_marked_value_task_mean_target_keeps_the_inputs():
    task = marked_value_task(40, 8, min_len=3, seed=5)
    mean = marked_value_task(40, 8, min_len=3, target="mean", seed=5)
    assert torch.equal(task.x, mean.x) and torch.equal(task.lengths, mean.lengths)
    pad = padding_mask(task.lengths, 8)
    expected = task.x[:, :, 0].sum(dim=1) / task.lengths
    torch.testing.assert_close(mean.y[:, 0], expected)
    assert torch.isnan(mean.y[pad]).all()
    with pytest.raises(ValueError, match="target must be"):
        marked_value_task(4, 8, target="sum")


def test_marked_token_task_targets_the_token_after_the_marker():
    task = marked_token_task(60, 7, 5, seed=2)
    x, y, tokens = task.x, task.y, task.tokens
    assert x.shape == (60, 7, 6) and y.shape == (60, 7) and y.dtype == torch.long
    marked = x[:, :, -1].argmax(dim=1)
    assert torch.equal(x[:, :, -1].sum(dim=1), torch.ones(60)) and (marked < 6).all()
    assert torch.equal(y[:, 0], tokens[torch.arange(60), marked + 1])
    assert (y == y[:, :1]).all()  # every step names the same token
    assert torch.equal(x[:, :, :-1].argmax(dim=-1), tokens)
    start = marked_token_task(60, 7, 5, at_start=True, seed=2)
    assert (start.x[:, 0, -1] == 1).all() and torch.equal(start.y[:, 0], start.tokens[:, 0])
    with pytest.raises(ValueError, match="offset"):
        marked_token_task(4, 5, 3, offset=5)


def test_task_noise_keeps_the_inputs_and_sets_a_known_floor():
    task = marked_value_task(4000, 8, min_len=3, target="mean", seed=5)
    noisy = marked_value_task(4000, 8, min_len=3, target="mean", noise=0.1, seed=5)
    assert torch.equal(task.x, noisy.x) and torch.equal(task.lengths, noisy.lengths)
    residual = (noisy.y - task.y)[:, 0]
    assert (
        (noisy.y - task.y).nan_to_num(0.0).eq(residual[:, None]).logical_or(torch.isnan(task.y))
    ).all()
    assert abs(residual.std().item() - 0.1) < 0.01  # floor MSE = noise ** 2
    with pytest.raises(ValueError, match="noise"):
        marked_value_task(4, 8, noise=-0.1)
    clean = marked_token_task(4000, 6, 8, at_start=True, seed=3)
    noisy = marked_token_task(4000, 6, 8, at_start=True, label_noise=0.3, seed=3)
    assert torch.equal(clean.x, noisy.x) and torch.equal(clean.tokens, noisy.tokens)
    assert (noisy.y == noisy.y[:, :1]).all()  # still one label per sequence
    bayes = 1 - 0.3 * 7 / 8
    assert abs((noisy.y[:, 0] == clean.y[:, 0]).float().mean().item() - bayes) < 0.02
    assert torch.equal(
        marked_token_task(50, 6, 8, label_noise=0.0, seed=3).y,
        marked_token_task(50, 6, 8, seed=3).y,
    )
    with pytest.raises(ValueError, match="label_noise"):
        marked_token_task(4, 6, 8, label_noise=1.5)


# -- notebook 10's lookup and count ---------------------------------------------------------------
def test_marker_task_labels_the_symbol_after_the_mark_the_two_halves_name():
    task = marker_task(500, 12, seed=3)
    ids, labels, marks = task.x, task.y, task.marks
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
    assert torch.equal(marker_task(500, 12, seed=3).x, ids)  # seeded


def test_count_task_counts_every_step_alike():
    task = count_task(400, 12, seed=1)
    count = (task.x[:, 1:-1] == 9).sum(1)
    assert torch.equal(task.y, (count >= COUNT_AT_LEAST).long())
    assert not torch.isin(task.x, torch.tensor(MARKS)).any()
    assert 0.2 < task.y.float().mean() < 0.8  # both classes common


def test_count_task_noise_flips_that_share_of_labels_so_the_bayes_rate_is_known():
    clean = count_task(20_000, 12, seed=4)
    noisy = count_task(20_000, 12, seed=4, noise=0.15)
    assert torch.equal(noisy.x, clean.x)  # the same sequences, only labels flipped
    flipped = (noisy.y != clean.y).float().mean().item()
    assert flipped == pytest.approx(0.15, abs=0.01)  # the best possible accuracy is about 0.85
    assert torch.equal(
        count_task(50, 12, seed=4, noise=0.15).y, count_task(50, 12, seed=4, noise=0.15).y
    )
    with pytest.raises(ValueError, match="flip probability"):
        count_task(10, 12, noise=0.5)


@pytest.mark.parametrize(("n", "seq_len"), [(0, 12), (5, 9)])
def test_marker_task_rejects_sizes_without_room(n, seq_len):
    with pytest.raises(ValueError, match="need n >= 1"):
        marker_task(n, seq_len)


def test_token_names_are_readable():
    names = token_names(marker_task(1, 12, seed=0).x)[0]
    assert names[0] in {"[A0]", "[A1]"} and names[-1] in {"[B0]", "[B1]"}
    assert sorted(n for n in names if n.startswith("[M")) == ["[M0]", "[M1]", "[M2]", "[M3]"]


# -- generated sentiment sentences (notebooks 08, 09) ---------------------------------------------
def test_sentiment_splits_sizes_types_and_determinism():
    a = sentiment_task(400, seed=3)
    b = sentiment_task(400, seed=3)
    c = sentiment_task(400, seed=4)
    assert a.sizes() == {"train": 280, "val": 60, "test": 60}
    for part in ("train", "val", "test"):
        texts, labels = getattr(a, part)
        assert isinstance(texts, list) and all(isinstance(t, str) for t in texts)
        assert labels.dtype == torch.int64 and labels.shape == (len(texts),)
        assert set(labels.tolist()) <= {0, 1}
        assert len(a.kinds[part]) == len(texts)
    assert a.train[0] == b.train[0] and torch.equal(a.train[1], b.train[1])
    assert a.train[0] != c.train[0]


def test_sentences_are_distinct_balanced_and_every_kind_appears():
    s = sentiment_task(2000)
    texts = s.train[0] + s.val[0] + s.test[0]
    assert len(set(texts)) == len(texts)  # no test sentence is also a training sentence
    labels = torch.cat([s.train[1], s.val[1], s.test[1]]).float()
    assert 0.4 < labels.mean().item() < 0.6
    assert set(s.kinds["test"]) == set(KINDS)


TEST_HEAD_SEED0 = [
    "Demand decreased, but Umbrella's margins climbed.",
    "Debt climbed modestly, while dividends rose strongly.",
]
TEST_POSITIVES_SEED0 = 119  # of 200: the 59.5 % positive test split issue 18 measured


def test_default_output_is_unchanged_by_the_balanced_option():
    """balanced=False (the default) must give byte-identical splits: notebook 09 and the app use it."""
    a = sentiment_task(300, seed=5)
    b = sentiment_task(300, seed=5, balanced=False)
    assert a.train[0] == b.train[0] and a.test[0] == b.test[0] and a.kinds == b.kinds
    assert torch.equal(a.test[1], b.test[1])
    # a fingerprint of the default output (seed 0, 1000 sentences), fixed when balanced was added
    s = sentiment_task(1000, seed=0, fractions=(0.6, 0.2))
    assert s.test[0][:2] == TEST_HEAD_SEED0 and s.test[1].sum().item() == TEST_POSITIVES_SEED0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_balanced_splits_are_half_positive_per_kind_and_split(seed):
    s = sentiment_task(2000, seed=seed, fractions=(0.3, 0.1), balanced=True)
    assert s.sizes() == {"train": 600, "val": 200, "test": 1200}
    texts = s.train[0] + s.val[0] + s.test[0]
    assert len(set(texts)) == len(texts)
    for part in ("train", "val", "test"):
        labels, kinds = getattr(s, part)[1], s.kinds[part]
        for kind in KINDS:
            group = labels[[i for i, k in enumerate(kinds) if k == kind]]
            positives = int(group.sum())
            assert abs(2 * positives - len(group)) <= 2, (part, kind, positives, len(group))
        assert majority_rate(labels) <= 0.51


def test_sentiment_task_bad_arguments():
    with pytest.raises(ValueError, match="at least 20"):
        sentiment_task(5)
    with pytest.raises(ValueError, match="fractions"):
        sentiment_task(100, fractions=(0.9, 0.2))
