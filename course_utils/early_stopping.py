"""Train to convergence: early stopping on a validation split, with the accuracy-against-budget curve.

A comparison of models trained for a fixed number of epochs measures, in part, how fast each one
learns, not how well it can do. :func:`train_early_stopping` trains one epoch at a time with the
course's :func:`~course_utils.training.train` loop (one optimizer for the whole run), keeps the
weights of the epoch with the lowest validation loss, stops after ``patience`` epochs without
improvement, and restores those weights. It also records a metric on an evaluation split after every
epoch, so a notebook can show accuracy *against budget* ("at 20 epochs" vs "at convergence") from
the same run.

:func:`train_to_plateau` is the stopping rule on the compared quantity itself: it stops when
validation *accuracy* has not risen for ``patience`` epochs, so a model and its rival are each
compared at what they can learn, not at how fast they learn it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from .training import MetricFn, accuracy, evaluate, train

__all__ = ["EarlyStopped", "Plateau", "train_early_stopping", "train_to_plateau"]


@dataclass
class EarlyStopped:
    """What :func:`train_early_stopping` did.

    Attributes:
        best_epoch: the epoch (1-based) whose weights were restored: the lowest validation loss.
        epochs: epochs actually trained (``best_epoch + patience`` unless ``max_epochs`` came first).
        patience: the patience it ran with.
        val_loss: validation loss after every epoch.
        curve: the metric on ``eval_data`` after every epoch (empty without ``eval_data``).
        seconds: wall time of the whole run.
    """

    best_epoch: int
    epochs: int
    patience: int
    val_loss: list[float] = field(default_factory=list)
    curve: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def converged(self) -> bool:
        """Whether training stopped because the validation loss stopped improving."""
        return self.epochs - self.best_epoch >= self.patience

    def at_budget(self, epochs: int) -> float:
        """The metric on ``eval_data`` after ``epochs`` epochs (the last one recorded if it stopped
        earlier: the run had converged by then)."""
        if not self.curve:
            raise ValueError("no curve recorded: pass eval_data to train_early_stopping")
        if epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {epochs}")
        return self.curve[min(epochs, len(self.curve)) - 1]


def train_early_stopping(
    model: nn.Module,
    train_data: Sequence[torch.Tensor],
    val_data: Sequence[torch.Tensor],
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    max_epochs: int,
    patience: int = 10,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    eval_data: Sequence[torch.Tensor] | None = None,
    metric: MetricFn = accuracy,
    device: torch.device | str | None = "cpu",
    clip_grad_norm: float | None = 1.0,
) -> EarlyStopped:
    """Train until the validation loss has not improved for ``patience`` epochs; keep the best weights.

    Args:
        model: any ``nn.Module`` taking ``model(*inputs)``; trained in place and left in eval mode
            with the weights of the best epoch.
        train_data, val_data: tuples ``(inputs..., targets)``.
        max_epochs: the most epochs trained, converged or not.
        patience: epochs without a lower validation loss before stopping.
        seed: seeds the batch order (epoch ``e`` uses ``seed * 10_000 + e``): runs repeat exactly.
        eval_data: also record ``metric`` on this split after every epoch (accuracy against budget).

    Returns:
        :class:`EarlyStopped`.
    """
    if max_epochs < 1 or patience < 1:
        raise ValueError(f"need max_epochs >= 1 and patience >= 1, got {max_epochs} and {patience}")
    import time

    start = time.perf_counter()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    best_loss, best_epoch, best_state = float("inf"), 0, None
    result = EarlyStopped(best_epoch=0, epochs=0, patience=patience)
    for epoch in range(1, max_epochs + 1):
        train(
            model,
            train_data,
            loss_fn=loss_fn,
            epochs=1,
            batch_size=batch_size,
            optimizer=optimizer,
            clip_grad_norm=clip_grad_norm,
            seed=seed * 10_000 + epoch,
            device=device,
            progress=False,
        )
        loss = evaluate(model, val_data, loss_fn)["loss"]
        result.val_loss.append(loss)
        if eval_data is not None:
            result.curve.append(evaluate(model, eval_data, loss_fn, metrics={"m": metric})["m"])
        result.epochs = epoch
        if loss < best_loss:
            best_loss, best_epoch = loss, epoch
            best_state = copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.best_epoch = best_epoch
    result.seconds = time.perf_counter() - start
    return result


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
