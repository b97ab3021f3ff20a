"""Every synthetic task of the course, made on the fly from a seed (no downloads).

A task returns a small frozen dataclass with one field order everywhere: inputs ``x``, targets ``y``,
then ``lengths`` when sequences are padded, then what the task knows besides (``positions``,
``marks``, ``tokens``). ``task.tensors`` is what :func:`~course_utils.training.train` takes, the
model's inputs then the target: ``(x, y)``, or ``(x, lengths, y)`` for padded sequences;
``task[:n]`` keeps the first ``n`` examples of every field.

Every function takes a ``seed`` and uses its own ``torch.Generator``, so the global random state is
left alone and the same call always returns the same tensors. Shapes (``batch_first``, as in the rest
of the course): ``N`` examples, ``T`` time steps, ``F`` features per step.

Example:
    >>> task = adding_problem(4, 10, seed=0)
    >>> task.x.shape, task.y.shape
    (torch.Size([4, 10, 2]), torch.Size([4]))
    >>> len(task[:3])
    3
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from .masks import lengths_to_mask, padding_mask
from .sentences import KINDS, make_sentence

__all__ = [
    "Task",
    "PaddedTask",
    "MarkedPaddedTask",
    "TokenTask",
    "MarkerTask",
    "Splits",
    "SentenceSplits",
    "split",
    "make_series",
    "make_windows",
    "forecasting_task",
    "adding_problem",
    "long_gap_adding_problem",
    "padded_adding_problem",
    "sum_task",
    "symbol_task",
    "majority_task",
    "random_lengths",
    "pad_to_lengths",
    "marked_value_task",
    "marked_token_task",
    "next_token_task",
    "next_token_floor",
    "duplicate_task",
    "PAD",
    "FIRST",
    "SECOND",
    "MARKS",
    "SYMBOLS",
    "VOCAB_SIZE",
    "COUNT_AT_LEAST",
    "marker_task",
    "count_task",
    "token_names",
    "sentiment_task",
]

SeriesKind = Literal["periodic", "random_walk"]


# --------------------------------------------------------------------------------------------------
# What a task returns
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Task:
    """Inputs ``x`` and targets ``y``, one example per row."""

    x: torch.Tensor
    y: torch.Tensor

    @property
    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)``: what :func:`~course_utils.training.train` and ``evaluate`` take."""
        return self.x, self.y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: slice | torch.Tensor) -> Task:
        """The same task with only the examples ``index`` picks, in every field."""
        if isinstance(index, int):
            raise TypeError(
                "a task is indexed by examples and stays a task: use task[i : i + 1], or task.x[i]"
            )
        return dataclasses.replace(
            self, **{f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self)}
        )

    def __iter__(self):
        raise TypeError(
            f"a {type(self).__name__} is not a tuple: read its fields by name "
            "(task.x, task.y, ...) or pass task.tensors"
        )


@dataclass(frozen=True)
class PaddedTask(Task):
    """Padded sequences: ``x``, ``y`` and the real length of each, ``lengths (N,)``."""

    lengths: torch.Tensor

    @property
    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x, lengths, y)``: the inputs of a model called as ``model(x, lengths)``, then the target."""
        return self.x, self.lengths, self.y


@dataclass(frozen=True)
class MarkedPaddedTask(PaddedTask):
    """Padded sequences and where the relevant steps are, ``positions (N, k)``."""

    positions: torch.Tensor


@dataclass(frozen=True)
class TokenTask(Task):
    """``x`` encodes the token ids ``tokens (N, T)`` (one-hot, plus marks); kept for plot labels."""

    tokens: torch.Tensor


@dataclass(frozen=True)
class MarkerTask(Task):
    """Notebook 10's lookup: ids ``x``, labels ``y`` and the wanted mark's position ``marks (N,)``."""

    marks: torch.Tensor


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------------------------
# Series, the adding problem, sums, copy/reverse (notebooks 00-04, 06)
# --------------------------------------------------------------------------------------------------
def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


@dataclass(frozen=True)
class Splits:
    """Train / validation / test tensors; each is a tuple ``(inputs..., targets)``."""

    train: tuple[torch.Tensor, ...]
    val: tuple[torch.Tensor, ...]
    test: tuple[torch.Tensor, ...]

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train[0]), "val": len(self.val[0]), "test": len(self.test[0])}


def split(
    *tensors: torch.Tensor, fractions: tuple[float, float] = (0.7, 0.15), seed: int = 0
) -> Splits:
    """Shuffle equally long tensors together and cut them into train / val / test.

    ``fractions`` are the train and validation shares; the test split gets the rest.
    """
    if not tensors:
        raise ValueError("split needs at least one tensor")
    n = len(tensors[0])
    if any(len(t) != n for t in tensors):
        raise ValueError(f"all tensors must have the same length, got {[len(t) for t in tensors]}")
    f_train, f_val = fractions
    if not (0 < f_train < 1 and 0 <= f_val < 1 and f_train + f_val < 1):
        raise ValueError(f"fractions must be two shares summing to less than 1, got {fractions}")
    order = torch.randperm(n, generator=_generator(seed))
    n_train, n_val = int(n * f_train), int(n * f_val)
    if min(n_train, n_val if f_val else 1, n - n_train - n_val) < 1:
        raise ValueError(f"{n} examples are too few to split as {fractions}")
    cut = [order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]]
    train, val, test = (tuple(t[idx] for t in tensors) for idx in cut)
    return Splits(train, val, test)


def make_series(
    n_series: int, length: int, *, kind: SeriesKind = "periodic", noise: float = 0.1, seed: int = 0
) -> torch.Tensor:
    """Synthetic "price" series, shape ``(n_series, length)``.

    ``"periodic"``: a sum of two sines with random periods (8-40 steps) and phases, plus Gaussian
    noise; predictable from its past. ``"random_walk"``: cumulative Gaussian steps with a small drift;
    its best forecast is the last value, a useful honest baseline.
    """
    _check_positive(n_series=n_series, length=length)
    g = _generator(seed)
    t = torch.arange(length, dtype=torch.float32)
    if kind == "periodic":
        periods = 8 + 32 * torch.rand(n_series, 2, 1, generator=g)
        phases = 2 * math.pi * torch.rand(n_series, 2, 1, generator=g)
        amps = torch.tensor([1.0, 0.5]).view(1, 2, 1)
        clean = (amps * torch.sin(2 * math.pi * t / periods + phases)).sum(dim=1)
        return clean + noise * torch.randn(n_series, length, generator=g)
    if kind == "random_walk":
        drift = 0.02 * torch.randn(n_series, 1, generator=g)
        steps = drift + torch.randn(n_series, length, generator=g) * max(noise, 1e-3) * 3
        return steps.cumsum(dim=1)
    raise ValueError(f"kind must be 'periodic' or 'random_walk', got {kind!r}")


def make_windows(series: torch.Tensor, window: int, horizon: int = 1, stride: int = 1) -> Task:
    """Cut series ``(N, L)`` into inputs ``x (M, window, 1)`` and targets ``y (M, horizon)``.

    Each input is ``window`` consecutive values; its target is the next ``horizon`` values.
    """
    if series.ndim != 2:
        raise ValueError(f"series must be 2-D (n_series, length), got shape {tuple(series.shape)}")
    _check_positive(window=window, horizon=horizon, stride=stride)
    if window + horizon > series.shape[1]:
        raise ValueError(
            f"window + horizon = {window + horizon} exceeds the series length {series.shape[1]}"
        )
    chunks = series.unfold(1, window + horizon, stride)  # (N, n_windows, window + horizon)
    chunks = chunks.reshape(-1, window + horizon)
    return Task(chunks[:, :window].unsqueeze(-1), chunks[:, window:])


def forecasting_task(
    n_series: int = 64,
    length: int = 120,
    window: int = 30,
    horizon: int = 1,
    *,
    kind: SeriesKind = "periodic",
    noise: float = 0.1,
    seed: int = 0,
) -> Splits:
    """Windows of synthetic series split **by series** (no window of a test series is seen in training).

    Returns :class:`Splits` of ``(inputs (M, window, 1), targets (M, horizon))``.
    """
    series = make_series(n_series, length, kind=kind, noise=noise, seed=seed)
    parts = split(series, seed=seed + 1)
    return Splits(
        *(
            make_windows(p[0], window, horizon, stride=window // 3 or 1).tensors
            for p in (parts.train, parts.val, parts.test)
        )
    )


def adding_problem(n: int, seq_len: int, *, seed: int = 0) -> Task:
    """The adding problem (Hochreiter & Schmidhuber, 1997): a long-range dependency test.

    Each step has two features: a value drawn from U(0, 1) and a marker (0 or 1). Exactly two steps are
    marked, one in the first half and one in the second half; the target is the sum of their values.
    Predicting 1.0 always gives a mean squared error of about 0.167, the bar a model must beat.

    Returns :class:`Task` ``x (n, seq_len, 2)``, ``y (n,)``.
    """
    _check_positive(n=n, seq_len=seq_len)
    if seq_len < 2:
        raise ValueError("seq_len must be at least 2 (one marker in each half)")
    g = _generator(seed)
    values = torch.rand(n, seq_len, generator=g)
    half = seq_len // 2
    first = torch.randint(0, half, (n,), generator=g)
    second = torch.randint(half, seq_len, (n,), generator=g)
    markers = torch.zeros(n, seq_len)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = torch.stack([values, markers], dim=-1)
    y = values[rows, first] + values[rows, second]
    return Task(x, y)


def sum_task(n: int, seq_len: int, *, last: int | None = None, seed: int = 0) -> Task:
    """A task where every step matters equally: the sum of a Gaussian sequence.

    ``x`` holds ``seq_len`` values from N(0, 1); the target is the sum of the last ``last`` of them
    (default: all), divided by ``sqrt(last)`` so that it has variance 1 whatever the length. The true
    function weighs each summed step the same, so a model that solves the task reaches the first step
    as strongly as the last (its input-gradient ratio ``g_0 / g_{T-1}`` is 1); with ``last=2`` only
    the two most recent steps matter (a control: the ratio should be near 0).

    Returns :class:`Task` ``x (n, seq_len, 1)``, ``y (n,)``.
    """
    _check_positive(n=n, seq_len=seq_len)
    last = seq_len if last is None else last
    if not 1 <= last <= seq_len:
        raise ValueError(f"last must lie in [1, seq_len={seq_len}], got {last}")
    x = torch.randn(n, seq_len, 1, generator=_generator(seed))
    return Task(x, x[:, seq_len - last :, 0].sum(dim=1) / math.sqrt(last))


def symbol_task(
    n: int,
    seq_len: int,
    vocab_size: int = 10,
    *,
    task: Literal["copy", "reverse"] = "copy",
    seed: int = 0,
) -> Task:
    """Copy or reverse a random symbol sequence: a sequence-to-sequence task with a known alignment.

    Symbols are ``1 .. vocab_size - 1`` (0 is kept free for padding). For ``"copy"`` output step ``t``
    should attend to input step ``t`` (a diagonal); for ``"reverse"`` to ``seq_len - 1 - t`` (the
    anti-diagonal).

    Returns :class:`Task` ``x (n, seq_len)`` (the source) and ``y (n, seq_len)`` (the target), both
    ``int64``.
    """
    _check_positive(n=n, seq_len=seq_len)
    if vocab_size < 3:
        raise ValueError(
            f"vocab_size must be at least 3 (padding plus two symbols), got {vocab_size}"
        )
    source = torch.randint(1, vocab_size, (n, seq_len), generator=_generator(seed))
    if task == "copy":
        return Task(source, source.clone())
    if task == "reverse":
        return Task(source, source.flip(dims=[1]))
    raise ValueError(f"task must be 'copy' or 'reverse', got {task!r}")


def random_lengths(n: int, min_len: int, max_len: int, *, seed: int = 0) -> torch.Tensor:
    """``n`` sequence lengths drawn uniformly from ``[min_len, max_len]`` (for variable-length demos)."""
    _check_positive(n=n, min_len=min_len, max_len=max_len)
    if min_len > max_len:
        raise ValueError(f"min_len ({min_len}) must not exceed max_len ({max_len})")
    return torch.randint(min_len, max_len + 1, (n,), generator=_generator(seed))


def pad_to_lengths(x: torch.Tensor, lengths: torch.Tensor, pad_value: float = 0.0) -> torch.Tensor:
    """Overwrite every step of ``x (N, T, ...)`` at or after ``lengths[i]`` with ``pad_value``."""
    if len(lengths) != len(x):
        raise ValueError(f"got {len(lengths)} lengths for {len(x)} sequences")
    if int(lengths.min()) < 1 or int(lengths.max()) > x.shape[1]:
        raise ValueError(
            f"lengths must lie in [1, {x.shape[1]}], got {lengths.min()}..{lengths.max()}"
        )
    steps = torch.arange(x.shape[1], device=x.device)
    mask = steps.unsqueeze(0) < lengths.to(x.device).unsqueeze(1)  # (N, T) True = real step
    mask = mask.view(*mask.shape, *([1] * (x.ndim - 2)))
    return torch.where(mask, x, torch.full_like(x, pad_value))


def long_gap_adding_problem(n: int, seq_len: int, *, window: int = 10, seed: int = 0) -> Task:
    """The adding problem with a long gap: the first mark in the first ``window`` steps, the second
    in the last ``window`` steps, so the two are at least ``seq_len - 2 * window + 1`` steps apart.

    Same features and target as :func:`adding_problem` (value from U(0, 1), marker 0 or 1; the target
    is the sum of the two marked values). A model that forgot the first value can do no better than
    ``second + 0.5``, with squared error about 1/12 = 0.083.

    Returns :class:`Task` ``x (n, seq_len, 2)``, ``y (n,)``.
    """
    _check_positive(n=n, seq_len=seq_len, window=window)
    if 2 * window > seq_len:
        raise ValueError(f"2 * window ({2 * window}) must not exceed seq_len ({seq_len})")
    g = _generator(seed)
    values = torch.rand(n, seq_len, generator=g)
    first = torch.randint(0, window, (n,), generator=g)
    second = torch.randint(seq_len - window, seq_len, (n,), generator=g)
    markers = torch.zeros(n, seq_len)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = torch.stack([values, markers], dim=-1)
    return Task(x, values[rows, first] + values[rows, second])


def padded_adding_problem(
    n: int,
    max_len: int,
    *,
    min_len: int | None = None,
    seed: int = 0,
    target: Literal["marked_sum", "mean"] = "marked_sum",
) -> MarkedPaddedTask:
    """The adding problem with variable lengths and zero padding at the end.

    Example ``i`` has ``lengths[i]`` real steps (uniform in ``[min_len, max_len]``, default
    ``max_len // 2``); each step holds a value in U(0, 1) and a 0/1 marker. One marked step lies in
    the first half of the real steps, one in the second; the target is the sum of their values. The
    marked steps are the only relevant ones, so we know where attention *should* go.

    ``target="mean"`` keeps the same inputs (markers included) but makes the target the mean of all
    real values: a task where every step matters equally, the control for "attention improves".

    Returns:
        :class:`MarkedPaddedTask` ``x (n, max_len, 2)``, ``y (n,)``, ``lengths (n,)`` and
        ``positions (n, 2)`` (the marked steps).
    """
    min_len = min_len if min_len is not None else max(2, max_len // 2)
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not 2 <= min_len <= max_len:
        raise ValueError(f"need 2 <= min_len <= max_len, got min_len={min_len}, max_len={max_len}")
    g = _generator(seed)
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=g)
    values = torch.rand(n, max_len, generator=g)
    half = lengths // 2
    # A uniform draw in [0, half) and in [half, length), per example.
    first = (torch.rand(n, generator=g) * half).long()
    second = half + (torch.rand(n, generator=g) * (lengths - half)).long()
    positions = torch.stack([first, second], dim=1)  # (n, 2)
    rows = torch.arange(n)
    markers = torch.zeros(n, max_len)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    mask = lengths_to_mask(lengths, max_len)  # (n, T)
    x = torch.stack([values, markers], dim=-1) * mask.unsqueeze(-1)  # (n, T, 2), zeros on padding
    if target == "marked_sum":
        y = values[rows, first] + values[rows, second]
    elif target == "mean":
        y = x[..., 0].sum(dim=1) / lengths.float()  # padding is 0, so this averages the real steps
    else:
        raise ValueError(f"target must be 'marked_sum' or 'mean', got {target!r}")
    return MarkedPaddedTask(x, y, lengths, positions)


def majority_task(n: int, seq_len: int, *, noise: float = 0.0, seed: int = 0) -> Task:
    """A symbol task where every source step matters equally: which of two symbols is the majority.

    Each source step is symbol 1 or 2 (0 stays free for padding); the target is one step, the more
    frequent symbol. Every step counts the same, so the mean of the encoder outputs (what uniform
    attention hands the decoder) is all a model needs: the control task for "attention lets a model
    weigh the importance of the input steps", where the uniform-attention rival should lose nothing.

    ``noise`` flips each label to the other symbol with that probability, independently of the
    source: the best possible error (the Bayes rate) is then exactly ``noise``, so a control task has
    headroom (no model reaches 0) and a known floor that no model can beat.

    Returns :class:`Task` ``x (n, seq_len)`` (the source) and ``y (n, 1)`` (the target), both
    ``int64``. ``seq_len`` must be odd (no ties).
    """
    if n < 1 or seq_len < 1 or seq_len % 2 == 0:
        raise ValueError(f"need n >= 1 and an odd seq_len (no ties), got n={n}, seq_len={seq_len}")
    if not 0 <= noise < 0.5:
        raise ValueError(f"noise is a flip probability below 0.5, got {noise}")
    gen = _generator(seed)
    source = torch.randint(1, 3, (n, seq_len), generator=gen)
    target = torch.where(2 * (source == 2).sum(dim=1) > seq_len, 2, 1)  # (n,)
    if noise > 0:
        flip = torch.rand(n, generator=gen) < noise
        target = torch.where(flip, 3 - target, target)  # 1 <-> 2
    return Task(source, target.unsqueeze(1))  # (n, S), (n, 1)


# --------------------------------------------------------------------------------------------------
# Tasks that suit each design of article 003 (notebook 07)
# --------------------------------------------------------------------------------------------------
def marked_value_task(
    n: int,
    seq_len: int,
    *,
    min_len: int | None = None,
    target: str = "marked",
    noise: float = 0.0,
    seed: int = 0,
) -> PaddedTask:
    """Every step must output the value of the one marked step (design 1).

    Each step carries ``(value, marker)``: values from U(0, 1), exactly one real step marked. The
    target of *every* step, those before the marker included, is the marked value, so a forward LSTM
    alone cannot solve it; attention can (each query should look at the marked key). Sequences
    shorter than ``seq_len`` are zero-padded at the end and their padded targets are NaN (leave them
    out of the loss, see :func:`~course_utils.metrics.masked_mse`).

    ``target="mean"`` keeps the same inputs but asks every step for the mean of the sequence's real
    values: there every step matters equally (the control task for "attention weighs importance").

    ``noise`` adds Gaussian noise with that standard deviation to each sequence's target (the same
    draw at every step of it): no model can predict it, so the best possible test MSE is
    ``noise ** 2`` and a control task stays clearly off the floor of 0.

    Returns:
        :class:`PaddedTask` ``x (n, seq_len, 2)``, ``y (n, seq_len)`` and ``lengths (n,)``.
    """
    if n < 1 or seq_len < 2:
        raise ValueError(f"need n >= 1 and seq_len >= 2, got n={n}, seq_len={seq_len}")
    min_len = seq_len if min_len is None else min_len
    if not 1 <= min_len <= seq_len:
        raise ValueError(f"min_len must lie in [1, seq_len={seq_len}], got {min_len}")
    if target not in ("marked", "mean"):
        raise ValueError(f"target must be 'marked' or 'mean', got {target!r}")
    if noise < 0:
        raise ValueError(f"noise is a standard deviation, so >= 0; got {noise}")
    g = _generator(seed)
    lengths = torch.randint(min_len, seq_len + 1, (n,), generator=g)
    values = torch.rand(n, seq_len, generator=g)
    marked = (torch.rand(n, generator=g) * lengths).long()  # uniform over the real steps
    rows = torch.arange(n)
    markers = torch.zeros(n, seq_len)
    markers[rows, marked] = 1.0
    pad = padding_mask(lengths, seq_len)  # (n, T)
    x = torch.stack([values, markers], dim=-1).masked_fill(pad.unsqueeze(-1), 0.0)  # (n, T, 2)
    if target == "mean":
        wanted = x[..., 0].sum(dim=1) / lengths  # (n,) mean of the real values
    else:
        wanted = values[rows, marked]  # (n,)
    if noise:
        wanted = wanted + noise * torch.randn(n, generator=g)  # drawn last: noise=0 changes nothing
    y = wanted.unsqueeze(1).expand(n, seq_len).clone()  # (n, T)
    y[pad] = float("nan")
    return PaddedTask(x, y, lengths)


def marked_token_task(
    n: int,
    seq_len: int,
    vocab_size: int,
    *,
    offset: int = 1,
    at_start: bool = False,
    label_noise: float = 0.0,
    seed: int = 0,
) -> TokenTask:
    """Every step must name the token ``offset`` steps after the one marked step (design 3).

    Each step carries a one-hot token and a marker bit; exactly one step is marked. The target of
    every step is the token at ``marked + offset``. With ``offset=1`` neither module alone can do it,
    by construction: a forward LSTM at a step before ``marked + 1`` has not read that token yet, and
    attention without positions can find the marked step but not the one after it (nothing marks it).
    An LSTM marks it (its state at ``marked + 1`` knows the step before was marked) and attention
    then fetches it: the combination can.

    ``at_start=True`` is the control task: the marker is always on step 0 and the target is the
    marked token itself, which either module alone can do (the LSTM remembers step 0, attention looks
    at the marked key).

    ``label_noise`` replaces each sequence's target, with that probability, by a token drawn
    uniformly (possibly the right one). No model can predict the replacement, so the best possible
    accuracy is ``1 - label_noise * (vocab_size - 1) / vocab_size`` (the Bayes rate): a control task
    with noise keeps every model clearly below 1.

    Returns:
        :class:`TokenTask` ``x (n, seq_len, vocab_size + 1)``, class targets ``y (n, seq_len)``
        (int64, the same at every step of a sequence) and the token ids ``tokens (n, seq_len)``.
    """
    if n < 1 or vocab_size < 2 or not 0 <= offset < seq_len:
        raise ValueError(
            f"need n >= 1, vocab_size >= 2 and 0 <= offset < seq_len, got n={n}, "
            f"vocab_size={vocab_size}, offset={offset}, seq_len={seq_len}"
        )
    if not 0 <= label_noise <= 1:
        raise ValueError(f"label_noise is a probability in [0, 1], got {label_noise}")
    g = _generator(seed)
    tokens = torch.randint(0, vocab_size, (n, seq_len), generator=g)
    rows = torch.arange(n)
    if at_start:
        marked, offset = torch.zeros(n, dtype=torch.long), 0
    else:
        marked = torch.randint(0, seq_len - offset, (n,), generator=g)
    marker = torch.zeros(n, seq_len, 1)
    marker[rows, marked] = 1.0
    x = torch.cat([nn.functional.one_hot(tokens, vocab_size).float(), marker], dim=-1)
    wanted = tokens[rows, marked + offset]  # (n,)
    if label_noise:  # drawn last: label_noise=0 changes nothing
        replaced = torch.rand(n, generator=g) < label_noise
        wanted = torch.where(replaced, torch.randint(0, vocab_size, (n,), generator=g), wanted)
    y = wanted.unsqueeze(1).expand(n, seq_len).clone()  # (n, T)
    return TokenTask(x, y, tokens)


def next_token_task(n: int, seq_len: int, vocab_size: int, *, seed: int = 0) -> Task:
    """Token sequences whose next token is random at every other step (design 2).

    The sequence ``s_0 .. s_T`` has ``s_{2k}`` uniform over the vocabulary and
    ``s_{2k+1} = (s_{2k} + 1) mod V``. A model that reads only the past can predict the odd tokens
    exactly but no better than chance the even ones, so its cross-entropy cannot fall below
    :func:`next_token_floor` (``ln V`` on half the targets). A loss far below that floor proves the
    model reads the future.

    Returns:
        :class:`Task` ``x (n, seq_len)`` = ``s_0 .. s_{T-1}`` and ``y (n, seq_len)`` = ``s_1 .. s_T``.
    """
    if n < 1 or seq_len < 2 or vocab_size < 2:
        raise ValueError(
            f"need n >= 1, seq_len >= 2, vocab_size >= 2, got {n}, {seq_len}, {vocab_size}"
        )
    g = _generator(seed)
    s = torch.randint(0, vocab_size, (n, seq_len + 1), generator=g)
    n_odd = s[:, 1::2].shape[1]
    s[:, 1::2] = (
        s[:, 0::2][:, :n_odd] + 1
    ) % vocab_size  # each odd token follows from the one before
    return Task(s[:, :-1].clone(), s[:, 1:].clone())


def next_token_floor(seq_len: int, vocab_size: int) -> float:
    """The lowest mean cross-entropy (nats) an honest model can reach on :func:`next_token_task`.

    Targets ``s_1 .. s_T``: the even ones (``T // 2`` of them) are uniform, costing ``ln V`` each;
    the odd ones are determined by the token before them and cost nothing.
    """
    return (seq_len // 2) * math.log(vocab_size) / seq_len


def duplicate_task(n: int, seq_len: int, vocab_size: int, *, seed: int = 0) -> TokenTask:
    """Label each token 1 if the same token occurs anywhere else in its sequence (design 3).

    The answer for step ``t`` needs the token at ``t`` (what the LSTM carries) and a look at every
    other step, before and after ``t`` (what attention gathers): the concatenation design fits.

    Returns:
        :class:`TokenTask` one-hot ``x (n, seq_len, vocab_size)``, labels ``y (n, seq_len)`` (float
        0/1) and the token ids ``tokens (n, seq_len)`` (for plot labels).
    """
    if n < 1 or seq_len < 2 or vocab_size < 2:
        raise ValueError(
            f"need n >= 1, seq_len >= 2, vocab_size >= 2, got {n}, {seq_len}, {vocab_size}"
        )
    tokens = torch.randint(0, vocab_size, (n, seq_len), generator=_generator(seed))
    same = tokens.unsqueeze(2) == tokens.unsqueeze(1)  # (n, T, T)
    y = ((same.sum(dim=2) - 1) > 0).float()  # (n, T): another step holds the same token
    x = nn.functional.one_hot(tokens, vocab_size).float()  # (n, T, V)
    return TokenTask(x, y, tokens)


# --------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------
# Notebook 10: a lookup that needs attention, and a count that does not
# --------------------------------------------------------------------------------------------------
# The lookup (marker_task): four marks [M0] .. [M3], each followed by a symbol; the label is the
# symbol after the *wanted* mark. Which mark is wanted is written in two halves, one at each end:
# step 0 is [A0] or [A1] (a), the last step [B0] or [B1] (b), and mark 2a + b is wanted. The model
# answers at step 0. Neither direction of a bidirectional LSTM knows the whole question while it
# passes the marks, so a model that averages its steps must carry the symbols of the marks its half
# leaves open; attention, asked at step 0 where both halves are known, can look the wanted mark up.
# The count (count_task), the control: the label is whether the symbol a fills at least
# COUNT_AT_LEAST of the steps in between. Every step matters equally, so averaging loses nothing.
PAD = 0
#: ``[A0]``, ``[A1]``: the question's first half, at step 0 (where the model answers).
FIRST = (1, 2)
#: ``[B0]``, ``[B1]``: the question's second half, at the last step.
SECOND = (3, 4)
#: ``[M0] .. [M3]``: mark ``2a + b`` is the wanted one.
MARKS = (5, 6, 7, 8)
#: The symbols (ids 9 ..); a label is the index of one of them.
SYMBOLS = ("a", "b", "c", "d")
_SYMBOL0 = 9
VOCAB_SIZE = _SYMBOL0 + len(SYMBOLS)
#: :func:`count_task`'s label is 1 when ``a`` fills at least this many of the steps in between.
COUNT_AT_LEAST = 3


def _question(n: int, seq_len: int, g: torch.Generator) -> tuple[torch.Tensor, ...]:
    ids = torch.randint(_SYMBOL0, _SYMBOL0 + len(SYMBOLS), (n, seq_len), generator=g)
    a = torch.randint(0, 2, (n,), generator=g)
    b = torch.randint(0, 2, (n,), generator=g)
    ids[:, 0] = FIRST[0] + a
    ids[:, -1] = SECOND[0] + b
    return ids, a, b


def marker_task(n: int, seq_len: int = 12, *, seed: int = 0) -> MarkerTask:
    """``n`` sequences ``[Aa] .. [Mk] s .. [Bb]``; the label is the symbol after mark ``2a + b``.

    The four marks sit at distinct odd steps ``1, 3, .., seq_len - 3`` (so a mark is never followed
    by another mark). Returns :class:`MarkerTask` ids ``x (n, seq_len)`` int64, labels ``y (n,)`` in
    ``0 .. 3`` and the wanted mark's position ``marks (n,)``.

    >>> task = marker_task(2000, seed=1)
    >>> task.x.shape, task.y.shape, task.marks.shape
    (torch.Size([2000, 12]), torch.Size([2000]), torch.Size([2000]))
    """
    slots = (seq_len - 3 + 1) // 2  # odd steps 1 .. seq_len - 3
    if n < 1 or slots < len(MARKS):
        raise ValueError(f"need n >= 1 and seq_len >= 10 (room for 4 marks), got {n}, {seq_len}")
    g = _generator(seed)
    ids, a, b = _question(n, seq_len, g)
    order = torch.rand(n, slots, generator=g).argsort(dim=1)[:, : len(MARKS)]  # (n, 4) slots
    positions = 2 * order + 1  # (n, 4): where mark k sits
    rows = torch.arange(n)
    for k, mark in enumerate(MARKS):
        ids[rows, positions[:, k]] = mark
    marks = positions[rows, 2 * a + b]  # (n,)
    return MarkerTask(ids, ids[rows, marks + 1] - _SYMBOL0, marks)


def count_task(n: int, seq_len: int = 12, *, seed: int = 0, noise: float = 0.0) -> Task:
    """``n`` sequences ``[Aa] s s .. s [Bb]`` (no marks); label 1 when ``a`` fills at least
    :data:`COUNT_AT_LEAST` of the steps in between, else 0. Every step counts the same.

    ``noise``: each label is flipped with this probability (drawn from the same seeded generator),
    so no model can score above ``1 - noise`` on average (the Bayes rate): a task with headroom
    on which focusing cannot help.

    Returns :class:`Task` ids ``x (n, seq_len)`` int64 and labels ``y (n,)`` in ``{0, 1}``.
    """
    if n < 1 or seq_len < 4:
        raise ValueError(f"need n >= 1 and seq_len >= 4, got n={n}, seq_len={seq_len}")
    if not 0 <= noise < 0.5:
        raise ValueError(f"noise is a flip probability in [0, 0.5), got {noise}")
    g = _generator(seed)
    ids, _, _ = _question(n, seq_len, g)
    count = (ids[:, 1:-1] == _SYMBOL0).sum(dim=1)  # (n,): how many steps hold "a"
    labels = (count >= COUNT_AT_LEAST).long()
    if noise > 0:
        flip = torch.rand(n, generator=g) < noise
        labels = torch.where(flip, 1 - labels, labels)
    return Task(ids, labels)


def token_names(ids: torch.Tensor) -> list[list[str]]:
    """Readable tokens of ``ids (N, T)``, for the views' labels."""
    names = {PAD: "[PAD]"}
    names |= {t: f"[A{k}]" for k, t in enumerate(FIRST)} | {
        t: f"[B{k}]" for k, t in enumerate(SECOND)
    }
    names |= {t: f"[M{k}]" for k, t in enumerate(MARKS)}
    names |= {_SYMBOL0 + k: s for k, s in enumerate(SYMBOLS)}
    return [[names[int(i)] for i in row] for row in ids]


# --------------------------------------------------------------------------------------------------
# Generated market-news sentences (notebooks 08, 09; the grammar is in sentences.py)
# --------------------------------------------------------------------------------------------------
@dataclass
class SentenceSplits:
    """Train / validation / test sentences, each as ``(texts, labels)``.

    ``labels`` are ``int64`` tensors of shape ``(N,)``: 0 = negative, 1 = positive. ``kinds`` holds,
    per split, the kind of every sentence (``plain``, ``negation``, ``contrast``, ``intensity``).
    """

    train: tuple[list[str], torch.Tensor]
    val: tuple[list[str], torch.Tensor]
    test: tuple[list[str], torch.Tensor]
    kinds: dict[str, list[str]] = field(default_factory=dict)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train[0]), "val": len(self.val[0]), "test": len(self.test[0])}


def sentiment_task(
    n: int = 3000,
    *,
    seed: int = 0,
    fractions: tuple[float, float] = (0.7, 0.15),
    kind_weights: Sequence[float] = (0.2, 0.2, 0.35, 0.25),
    balanced: bool = False,
) -> SentenceSplits:
    """``n`` distinct market-news sentences with rule-made labels, split train / val / test.

    Args:
        n: number of sentences (all distinct), at least 20.
        seed: the only source of randomness; the same seed gives the same sentences and splits.
        fractions: train and validation shares; the test split gets the rest.
        kind_weights: how often each kind in :data:`KINDS` is drawn.
        balanced: ``True`` makes every kind half positive, half negative, in every split (up to one
            sentence per kind and label): sentences whose label the kind already has enough of are
            redrawn, and each (kind, label) group is spread evenly over the splits. Always-predict-
            the-majority then scores about 0.5 overall and per kind. ``False`` (default) keeps the
            labels the rules give (the positive share differs by kind and by split).

    Returns:
        :class:`SentenceSplits` with ``(texts, labels)`` per split and the kind of every sentence.
    """
    if not isinstance(n, int) or n < 20:
        raise ValueError(f"n must be an int of at least 20, got {n!r}")
    f_train, f_val = fractions
    if not (0 < f_train < 1 and 0 < f_val < 1 and f_train + f_val < 1):
        raise ValueError(f"fractions must be two shares summing to less than 1, got {fractions}")
    if len(kind_weights) != len(KINDS):
        raise ValueError(
            f"kind_weights needs {len(KINDS)} weights for {KINDS}, got {len(kind_weights)}"
        )
    rng = random.Random(seed)
    seen: set[str] = set()
    texts: list[str] = []
    labels: list[int] = []
    kinds: list[str] = []
    wanted = dict.fromkeys(KINDS, 1)  # balanced: the label each kind takes next (alternating)
    while len(texts) < n:
        kind = rng.choices(KINDS, weights=kind_weights)[0]
        text, label = make_sentence(rng, kind)
        if text in seen or (balanced and label != wanted[kind]):
            continue
        seen.add(text)
        texts.append(text)
        labels.append(label)
        kinds.append(kind)
        wanted[kind] = 1 - label
    if balanced:
        order = _stratified_order(rng, list(zip(kinds, labels, strict=True)))
    else:
        order = list(range(n))
        rng.shuffle(order)
    n_train, n_val = int(n * f_train), int(n * f_val)
    cuts = {
        "train": order[:n_train],
        "val": order[n_train : n_train + n_val],
        "test": order[n_train + n_val :],
    }
    if balanced:  # contiguous cuts of a stratified order: shuffle inside each split
        for idx in cuts.values():
            rng.shuffle(idx)
    parts = {
        name: ([texts[i] for i in idx], torch.tensor([labels[i] for i in idx], dtype=torch.int64))
        for name, idx in cuts.items()
    }
    return SentenceSplits(
        train=parts["train"],
        val=parts["val"],
        test=parts["test"],
        kinds={name: [kinds[i] for i in idx] for name, idx in cuts.items()},
    )


def _stratified_order(rng: random.Random, groups: list[tuple[str, int]]) -> list[int]:
    """An order of ``range(len(groups))`` in which every group is spread evenly from start to end.

    Member ``j`` of a group of size ``m`` gets the key ``(j + u) / m`` (``u`` one random offset per
    group, members shuffled first), and the items are sorted by key: any contiguous cut of the
    order then holds each group's share of it, up to one item per group.
    """
    members: dict[tuple[str, int], list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    keyed = []
    for g in sorted(members):
        idx = members[g]
        rng.shuffle(idx)
        u = rng.random()
        keyed += [((j + u) / len(idx), rng.random(), i) for j, i in enumerate(idx)]
    return [i for *_, i in sorted(keyed)]
