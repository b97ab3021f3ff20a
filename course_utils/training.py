"""A small, explicit training loop shared by every notebook: seeded batches, a progress bar, a history.

Every design in the course trains the same way, so the notebooks spend their lines on the model, not on
the loop. The loop is deliberately plain (no callbacks, no magic): read it once and you know all of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from .device import pick_device
from .seeding import seed_everything

Batch = Sequence[torch.Tensor]
#: ``step(model, batch) -> (outputs, targets)``: how one batch goes through the model.
StepFn = Callable[[nn.Module, Batch], tuple[torch.Tensor, torch.Tensor]]
#: ``metric(outputs, targets) -> float``: a number to track per epoch (higher or lower is up to you).
MetricFn = Callable[[torch.Tensor, torch.Tensor], float]
M = TypeVar("M", bound=nn.Module)
R = TypeVar("R")


@dataclass
class History:
    """What happened during :func:`train`: one entry per epoch."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_metrics: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def last(self) -> dict[str, float]:
        """The final epoch's numbers, e.g. ``{'train_loss': 0.12, 'val_loss': 0.15, 'accuracy': 0.97}``."""
        out = {"train_loss": self.train_loss[-1]} if self.train_loss else {}
        if self.val_loss:
            out["val_loss"] = self.val_loss[-1]
        out.update({name: values[-1] for name, values in self.val_metrics.items() if values})
        return out


def default_step(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """All tensors but the last are the model's inputs; the last is the target."""
    *inputs, target = batch
    return model(*inputs), target


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Share of correct class predictions; ``outputs`` are logits ``(N, C)`` (or ``(N, T, C)``)."""
    if outputs.shape[:-1] != targets.shape:
        raise ValueError(
            f"accuracy expects logits of shape targets.shape + (C,), got outputs {tuple(outputs.shape)} "
            f"and targets {tuple(targets.shape)}"
        )
    return (outputs.argmax(dim=-1) == targets).float().mean().item()


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def as_dataset(data: Dataset | Sequence[torch.Tensor]) -> Dataset:
    """Accept a ``Dataset`` or a tuple of equally long tensors ``(inputs..., targets)``."""
    if isinstance(data, Dataset):
        return data
    tensors = tuple(data)
    if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
        raise TypeError("data must be a torch Dataset or a tuple of tensors (inputs..., targets)")
    lengths = {len(t) for t in tensors}
    if len(lengths) != 1:
        raise ValueError(
            f"all tensors must have the same first dimension, got lengths {sorted(lengths)}"
        )
    return TensorDataset(*tensors)


def _to(batch: Batch, device: torch.device) -> list[torch.Tensor]:
    return [t.to(device) for t in batch]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Dataset | Sequence[torch.Tensor],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    metrics: dict[str, MetricFn] | None = None,
    step: StepFn = default_step,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """Mean loss (weighted by batch size) and metrics of ``model`` on ``data``, in eval mode."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    loader = DataLoader(as_dataset(data), batch_size=batch_size, shuffle=False)
    total, n = 0.0, 0
    all_out, all_tgt = [], []
    try:
        for batch in loader:
            outputs, targets = step(model, _to(batch, device))
            total += loss_fn(outputs, targets).item() * len(targets)
            n += len(targets)
            if metrics:
                all_out.append(outputs.cpu())
                all_tgt.append(targets.cpu())
    finally:
        model.train(was_training)
    result = {"loss": total / max(n, 1)}
    if metrics:
        out, tgt = torch.cat(all_out), torch.cat(all_tgt)
        result.update({name: float(fn(out, tgt)) for name, fn in metrics.items()})
    return result


def train(
    model: nn.Module,
    train_data: Dataset | Sequence[torch.Tensor],
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    val_data: Dataset | Sequence[torch.Tensor] | None = None,
    metrics: dict[str, MetricFn] | None = None,
    step: StepFn = default_step,
    optimizer: torch.optim.Optimizer | None = None,
    clip_grad_norm: float | None = 1.0,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
    desc: str = "training",
) -> History:
    """Train ``model`` with Adam (or ``optimizer``) and return its :class:`History`.

    Devices (the rule of the whole course): training runs on ``device`` (default:
    :func:`~course_utils.device.pick_device`, a GPU when there is one), each batch is moved there,
    and the model is handed back **on the device it came in on**, in eval mode. So the cells after
    ``train(model, ...)`` feed the model the same (CPU) tensors as before, on any machine; to keep
    working on the GPU, move the model and your tensors there yourself (``model.to("cuda")``).
    An ``optimizer`` you pass keeps its state on the training device.

    Args:
        model: any ``nn.Module``; trained on ``device``, returned on the device it came in on.
        train_data: a ``Dataset`` or a tuple ``(inputs..., targets)`` of tensors.
        loss_fn: ``loss_fn(outputs, targets) -> scalar``.
        epochs: passes over ``train_data``.
        val_data: evaluated after every epoch when given (loss and ``metrics``).
        step: how a batch goes through the model; the default calls ``model(*inputs)``.
        clip_grad_norm: clip the global gradient norm (LSTMs like it); ``None`` turns it off.
        seed: seeds the batch order, so two runs with the same seed see the same batches.
        progress: show a ``tqdm.auto`` bar over epochs with the latest losses.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    device = pick_device(str(device) if device is not None else None)
    home = _home_device(model)
    model.to(device)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    loader = DataLoader(
        as_dataset(train_data),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    history = History(val_metrics={name: [] for name in (metrics or {})})
    start = time.perf_counter()
    bar = _epoch_bar(epochs, desc, progress)
    try:
        for _ in bar:
            model.train()
            total, n = 0.0, 0
            for batch in loader:
                outputs, targets = step(model, _to(batch, device))
                loss = loss_fn(outputs, targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if clip_grad_norm is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
                optimizer.step()
                total += loss.item() * len(targets)
                n += len(targets)
            history.train_loss.append(total / n)
            postfix = {"loss": f"{history.train_loss[-1]:.4f}"}
            if val_data is not None:
                result = evaluate(
                    model, val_data, loss_fn, metrics=metrics, step=step, device=device
                )
                history.val_loss.append(result["loss"])
                for name in metrics or {}:
                    history.val_metrics[name].append(result[name])
                postfix["val_loss"] = f"{result['loss']:.4f}"
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(postfix, refresh=False)
    finally:  # also after an error or an interrupt: the model never stays on the GPU
        if home is not None:
            model.to(home)
    model.eval()
    history.seconds = time.perf_counter() - start
    return history


def _home_device(model: nn.Module) -> torch.device | None:
    """The device of the model's first parameter (or buffer); ``None`` for a model without any."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return None


def _epoch_bar(epochs: int, desc: str, progress: bool):
    if not progress:
        return range(epochs)
    from .progress import progress_bar  # leaves no frozen bar in a saved notebook

    return progress_bar(range(epochs), desc=desc)


class Fitted(NamedTuple, Generic[M, R]):
    """What :func:`fit` returns: the trained model and what its trainer returned (its history)."""

    model: M
    history: R


def fit(
    build: Callable[[], M],
    train_data: Dataset | Sequence[torch.Tensor],
    *,
    seed: int,
    init: int | None = None,
    trainer: Callable[..., R] = train,
    **kwargs: Any,
) -> Fitted[M, R]:
    """Seed everything with ``seed``, build a model, train it with the same seed: one seeded run.

    The initial weights and the batch order both come from ``seed``, so a comparison at several
    seeds cannot forget to reseed before a build. ``build`` makes the model (``lambda: Model(...)``),
    called right after :func:`~course_utils.seeding.seed_everything`; ``trainer`` is called as
    ``trainer(model, train_data, seed=seed, **kwargs)``: :func:`train` (default),
    :func:`~course_utils.early_stopping.train_early_stopping` or
    :func:`~course_utils.early_stopping.train_to_plateau` (pass ``val_data=`` for those).
    ``init`` seeds the initial weights instead of ``seed`` (a twin run: other initial weights, the
    same data and batch order).

    Returns ``Fitted(model, history)``; unpack it as ``model, history = fit(...)``.

    >>> from torch import nn
    >>> data = (torch.randn(32, 3), torch.randn(32))
    >>> def run(seed):
    ...     build = lambda: nn.Sequential(nn.Linear(3, 1), nn.Flatten(0))
    ...     return fit(build, data, seed=seed, loss_fn=nn.functional.mse_loss, epochs=2,
    ...                device="cpu", progress=False)
    >>> run(1).history.train_loss == run(1).history.train_loss
    True
    """
    if isinstance(build, nn.Module) or not callable(build):
        raise TypeError(
            "fit needs a function that builds the model (e.g. lambda: Model(...)), so its initial "
            f"weights come from seed; got {type(build).__name__}"
        )
    seed_everything(seed if init is None else init)
    model = build()
    if not isinstance(model, nn.Module):
        raise TypeError(f"build() must return an nn.Module, got {type(model).__name__}")
    return Fitted(model, trainer(model, train_data, seed=seed, **kwargs))
