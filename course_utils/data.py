"""Small seeded sequence tasks, made on the fly (no downloads): series, the adding problem, sums, copy/reverse.

Every function takes a ``seed`` and uses its own ``torch.Generator``, so the global random state is
left alone and the same call always returns the same tensors.

Shapes (``batch_first``, as in the rest of the course): ``N`` examples, ``T`` time steps,
``F`` features per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

SeriesKind = Literal["periodic", "random_walk"]


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


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


def make_windows(
    series: torch.Tensor, window: int, horizon: int = 1, stride: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut series ``(N, L)`` into inputs ``(M, window, 1)`` and targets ``(M, horizon)``.

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
    return chunks[:, :window].unsqueeze(-1), chunks[:, window:]


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
            make_windows(p[0], window, horizon, stride=window // 3 or 1)
            for p in (parts.train, parts.val, parts.test)
        )
    )


def adding_problem(n: int, seq_len: int, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The adding problem (Hochreiter & Schmidhuber, 1997): a long-range dependency test.

    Each step has two features: a value drawn from U(0, 1) and a marker (0 or 1). Exactly two steps are
    marked, one in the first half and one in the second half; the target is the sum of their values.
    Predicting 1.0 always gives a mean squared error of about 0.167, the bar a model must beat.

    Returns ``x (n, seq_len, 2)`` and ``y (n,)``.
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
    return x, y


def sum_task(
    n: int, seq_len: int, *, last: int | None = None, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A task where every step matters equally: the sum of a Gaussian sequence.

    ``x`` holds ``seq_len`` values from N(0, 1); the target is the sum of the last ``last`` of them
    (default: all), divided by ``sqrt(last)`` so that it has variance 1 whatever the length. The true
    function weighs each summed step the same, so a model that solves the task reaches the first step
    as strongly as the last (its input-gradient ratio ``g_0 / g_{T-1}`` is 1); with ``last=2`` only
    the two most recent steps matter (a control: the ratio should be near 0).

    Returns ``x (n, seq_len, 1)`` and ``y (n,)``.
    """
    _check_positive(n=n, seq_len=seq_len)
    last = seq_len if last is None else last
    if not 1 <= last <= seq_len:
        raise ValueError(f"last must lie in [1, seq_len={seq_len}], got {last}")
    x = torch.randn(n, seq_len, 1, generator=_generator(seed))
    return x, x[:, seq_len - last :, 0].sum(dim=1) / math.sqrt(last)


def symbol_task(
    n: int,
    seq_len: int,
    vocab_size: int = 10,
    *,
    task: Literal["copy", "reverse"] = "copy",
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Copy or reverse a random symbol sequence: a sequence-to-sequence task with a known alignment.

    Symbols are ``1 .. vocab_size - 1`` (0 is kept free for padding). For ``"copy"`` output step ``t``
    should attend to input step ``t`` (a diagonal); for ``"reverse"`` to ``seq_len - 1 - t`` (the
    anti-diagonal).

    Returns ``source (n, seq_len)`` and ``target (n, seq_len)``, both ``int64``.
    """
    _check_positive(n=n, seq_len=seq_len)
    if vocab_size < 3:
        raise ValueError(
            f"vocab_size must be at least 3 (padding plus two symbols), got {vocab_size}"
        )
    source = torch.randint(1, vocab_size, (n, seq_len), generator=_generator(seed))
    if task == "copy":
        return source, source.clone()
    if task == "reverse":
        return source, source.flip(dims=[1])
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


def long_gap_adding_problem(
    n: int, seq_len: int, *, window: int = 10, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The adding problem with a long gap: the first mark in the first ``window`` steps, the second
    in the last ``window`` steps, so the two are at least ``seq_len - 2 * window + 1`` steps apart.

    Same features and target as :func:`adding_problem` (value from U(0, 1), marker 0 or 1; the target
    is the sum of the two marked values). A model that forgot the first value can do no better than
    ``second + 0.5``, with squared error about 1/12 = 0.083.

    Returns ``x (n, seq_len, 2)`` and ``y (n,)``.
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
    return x, values[rows, first] + values[rows, second]
