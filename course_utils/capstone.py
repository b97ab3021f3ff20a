"""Notebook 10's tasks and measurements: a lookup that needs attention, and a count that does not.

**The lookup** (:func:`marker_task`). Each sequence holds four marks ``[M0] .. [M3]``, each followed
by a symbol; the label is the symbol after the *wanted* mark. Which mark is wanted is written in two
halves, one at each end: the first step is ``[A0]`` or ``[A1]`` (``a``), the last step ``[B0]`` or
``[B1]`` (``b``), and mark ``2a + b`` is wanted. The model reads its answer at step 0. Neither
direction of a bidirectional LSTM knows the whole question while it passes the marks (the forward
pass has not read ``b`` yet, the backward pass not ``a``), so a model that averages its steps has
to learn to carry, in one direction, the symbols of the two marks its half leaves open (learnable,
from enough examples); attention, asked at step 0 where both halves are known, can look the wanted
mark up. Some steps matter far more than others.

**The count** (:func:`count_task`), the control of the same comparison: the label is whether the
symbol ``a`` fills at least :data:`COUNT_AT_LEAST` of the steps in between. Every step matters
equally, so averaging them loses nothing. ``noise=`` flips a share of the labels, so both models
sit below the ceiling (at the Bayes rate ``1 - noise``) and a rule can fail there informatively.

:func:`train_to_plateau` trains a model and its rival by the same stopping rule (validation
accuracy stopped rising), so a comparison is not one of learning speed.

Measurements::

    ids, labels, marks = marker_task(2000, seed=1)   # marks: position of the wanted mark
    share = marked_share(weights, marks)     # (N, heads): step 0's weight on the mark and the step after
    focus_ratio(weights, marks)              # the best head's mean share over what uniform gives
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from .training import accuracy, train

__all__ = [
    "PAD",
    "FIRST",
    "SECOND",
    "MARKS",
    "SYMBOLS",
    "VOCAB_SIZE",
    "COUNT_AT_LEAST",
    "marker_task",
    "count_task",
    "marked_share",
    "focus_ratio",
    "token_names",
    "Plateau",
    "train_to_plateau",
]

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


def marker_task(
    n: int, seq_len: int = 12, *, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` sequences ``[Aa] .. [Mk] s .. [Bb]``; the label is the symbol after mark ``2a + b``.

    The four marks sit at distinct odd steps ``1, 3, .., seq_len - 3`` (so a mark is never followed
    by another mark). Returns ``ids (n, seq_len)`` int64, ``labels (n,)`` in ``0 .. 3`` and the
    wanted mark's position ``marks (n,)``.
    """
    slots = (seq_len - 3 + 1) // 2  # odd steps 1 .. seq_len - 3
    if n < 1 or slots < len(MARKS):
        raise ValueError(f"need n >= 1 and seq_len >= 10 (room for 4 marks), got {n}, {seq_len}")
    g = torch.Generator().manual_seed(seed)
    ids, a, b = _question(n, seq_len, g)
    order = torch.rand(n, slots, generator=g).argsort(dim=1)[:, : len(MARKS)]  # (n, 4) slots
    positions = 2 * order + 1  # (n, 4): where mark k sits
    rows = torch.arange(n)
    for k, mark in enumerate(MARKS):
        ids[rows, positions[:, k]] = mark
    marks = positions[rows, 2 * a + b]  # (n,)
    return ids, ids[rows, marks + 1] - _SYMBOL0, marks


def count_task(
    n: int, seq_len: int = 12, *, seed: int = 0, noise: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` sequences ``[Aa] s s .. s [Bb]`` (no marks); label 1 when ``a`` fills at least
    :data:`COUNT_AT_LEAST` of the steps in between, else 0. Every step counts the same.

    ``noise``: each label is flipped with this probability (drawn from the same seeded generator),
    so no model can score above ``1 - noise`` on average (the Bayes rate): a task with headroom
    on which focusing cannot help.

    Returns ``ids (n, seq_len)`` int64 and ``labels (n,)`` in ``{0, 1}``.
    """
    if n < 1 or seq_len < 4:
        raise ValueError(f"need n >= 1 and seq_len >= 4, got n={n}, seq_len={seq_len}")
    if not 0 <= noise < 0.5:
        raise ValueError(f"noise is a flip probability in [0, 0.5), got {noise}")
    g = torch.Generator().manual_seed(seed)
    ids, _, _ = _question(n, seq_len, g)
    count = (ids[:, 1:-1] == _SYMBOL0).sum(dim=1)  # (n,): how many steps hold "a"
    labels = (count >= COUNT_AT_LEAST).long()
    if noise > 0:
        flip = torch.rand(n, generator=g) < noise
        labels = torch.where(flip, 1 - labels, labels)
    return ids, labels


def token_names(ids: torch.Tensor) -> list[list[str]]:
    """Readable tokens of ``ids (N, T)``, for the views' labels."""
    names = {PAD: "[PAD]"}
    names |= {t: f"[A{k}]" for k, t in enumerate(FIRST)} | {
        t: f"[B{k}]" for k, t in enumerate(SECOND)
    }
    names |= {t: f"[M{k}]" for k, t in enumerate(MARKS)}
    names |= {_SYMBOL0 + k: s for k, s in enumerate(SYMBOLS)}
    return [[names[int(i)] for i in row] for row in ids]


def marked_share(weights: torch.Tensor, marks: torch.Tensor) -> torch.Tensor:
    """Per example and head, the weight the first query puts on the mark and the step after it.

    ``weights (N, heads, L, S)`` per-head attention (``inspector.attentions[...]``), ``marks (N,)``.
    Returns ``(N, heads)`` on the device of ``weights``.
    """
    if weights.dim() != 4:
        raise ValueError(f"expected (N, heads, L, S) weights, got shape {tuple(weights.shape)}")
    if marks.shape != (weights.shape[0],):
        raise ValueError(
            f"expected one mark position per example, marks of shape ({weights.shape[0]},), "
            f"got {tuple(marks.shape)}"
        )
    marks = marks.to(weights.device)
    rows = torch.arange(weights.shape[0], device=weights.device)
    first = weights[:, :, 0]  # (N, heads, S): what query 0 takes from each key
    return first[rows, :, marks] + first[rows, :, marks + 1]  # (N, heads)


def focus_ratio(weights: torch.Tensor, marks: torch.Tensor) -> float:
    """The best head's mean :func:`marked_share`, over what uniform weights give (``2 / S``)."""
    share = marked_share(weights, marks).mean(dim=0)  # (heads,)
    return float(share.max()) / (2 / weights.shape[-1])


@dataclass
class Plateau:
    """What :func:`train_to_plateau` did: the epoch kept, the epochs run, the validation curve."""

    best_epoch: int
    epochs: int
    val_accuracy: list[float] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        """Whether it stopped because validation accuracy stopped rising (not at the cap)."""
        return self.epochs > self.best_epoch


def train_to_plateau(
    model: nn.Module,
    train_data: Sequence[torch.Tensor],
    val_data: Sequence[torch.Tensor],
    *,
    max_epochs: int,
    patience: int,
    lr: float,
    batch_size: int,
    seed: int,
) -> Plateau:
    """Train until validation accuracy has not risen for ``patience`` epochs; keep the best weights.

    The same stopping rule for a model and its rival, so neither is compared before it has learned
    what it can: the accuracy is the quantity the comparison is about. One Adam optimizer for the
    whole run (the course's :func:`~course_utils.training.train`, one epoch at a time, batch order
    seeded by ``seed``). The model is left in eval mode with the weights of the best epoch.
    """
    if max_epochs < 1 or patience < 1:
        raise ValueError(f"need max_epochs >= 1 and patience >= 1, got {max_epochs} and {patience}")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    x_val, y_val = val_data
    result = Plateau(best_epoch=0, epochs=0)
    best, best_state = -1.0, None
    for epoch in range(1, max_epochs + 1):
        train(
            model,
            train_data,
            loss_fn=nn.functional.cross_entropy,
            epochs=1,
            lr=lr,
            batch_size=batch_size,
            optimizer=optimizer,
            seed=seed * 10_000 + epoch,
            device="cpu",
            progress=False,
        )
        with torch.no_grad():
            score = accuracy(model(x_val), y_val)
        result.val_accuracy.append(score)
        result.epochs = epoch
        if score > best:
            best, result.best_epoch = score, epoch
            best_state = copy.deepcopy(model.state_dict())
        elif epoch - result.best_epoch >= patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    return result
