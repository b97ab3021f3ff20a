"""Notebook 10's task and measurements: a marked-symbol lookup, where attention must find one step.

Each sequence starts with ``[CLS]`` and holds one ``[MARK]``; the label is the symbol right after the
mark. A model that reads its answer at the ``[CLS]`` position has to fetch it from elsewhere, which
is the job the seed article gives multi-head attention ("focusing on specific parts of the
sequence"). The helpers measure that with a control, as the course does everywhere::

    ids, labels, marks = marker_task(2000, seed=1)
    share = marked_share(weights, marks)     # (N, heads): [CLS]'s weight on the mark and the step after
    focus_ratio(weights, marks, lengths)     # that share over what uniform attention would give
"""

from __future__ import annotations

import torch

__all__ = [
    "CLS",
    "MARK",
    "PAD",
    "SYMBOLS",
    "marker_task",
    "marked_share",
    "focus_ratio",
    "token_names",
]

PAD, CLS, MARK = 0, 1, 2
#: The symbols a sequence is made of (ids 3 ..); the label is the index of the one after the mark.
SYMBOLS = ("a", "b", "c", "d")


def marker_task(
    n: int, seq_len: int = 16, *, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` sequences ``[CLS] s s ... [MARK] s ...``; the label is the symbol after ``[MARK]``.

    Returns ``ids (n, seq_len)`` int64, ``labels (n,)`` in ``0 .. len(SYMBOLS) - 1`` and the mark's
    position ``marks (n,)`` in ``1 .. seq_len - 2``. Chance accuracy is ``1 / len(SYMBOLS)``.
    """
    if n < 1 or seq_len < 4:
        raise ValueError(f"need n >= 1 and seq_len >= 4, got n={n}, seq_len={seq_len}")
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 3 + len(SYMBOLS), (n, seq_len), generator=g)
    ids[:, 0] = CLS
    marks = torch.randint(1, seq_len - 1, (n,), generator=g)
    rows = torch.arange(n)
    ids[rows, marks] = MARK
    return ids, ids[rows, marks + 1] - 3, marks


def token_names(ids: torch.Tensor) -> list[list[str]]:
    """Readable tokens of ``ids (N, T)``, for the views' labels."""
    names = {PAD: "[PAD]", CLS: "[CLS]", MARK: "[MARK]"} | {3 + k: s for k, s in enumerate(SYMBOLS)}
    return [[names[int(i)] for i in row] for row in ids]


def marked_share(weights: torch.Tensor, marks: torch.Tensor) -> torch.Tensor:
    """Per example and head, the weight the first query puts on the mark and the step after it.

    ``weights (N, heads, L, S)`` per-head attention (``inspector.attentions[...]``), ``marks (N,)``.
    Returns ``(N, heads)``.
    """
    if weights.dim() != 4:
        raise ValueError(f"expected (N, heads, L, S) weights, got shape {tuple(weights.shape)}")
    rows = torch.arange(weights.shape[0])
    first = weights[:, :, 0]  # (N, heads, S): what query 0 ([CLS]) takes from each key
    return first[rows, :, marks] + first[rows, :, marks + 1]  # (N, heads)


def focus_ratio(weights: torch.Tensor, marks: torch.Tensor) -> float:
    """The best head's mean :func:`marked_share`, over what uniform weights give (``2 / S``)."""
    share = marked_share(weights, marks).mean(dim=0)  # (heads,)
    return float(share.max()) / (2 / weights.shape[-1])
