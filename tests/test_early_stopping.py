"""The stopping rules: keep the best validation epoch (loss or accuracy), stop after `patience`, repeat."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.early_stopping import train_early_stopping, train_to_plateau
from course_utils.seeding import seeded
from course_utils.training import evaluate


def _data(n: int, seed: int):
    with seeded(seed) as g:
        x = torch.randn(n, 6, generator=g)
        y = (x[:, 0] + 0.5 * torch.randn(n, generator=g) > 0).long()
    return x, y


def _model(seed: int = 0) -> nn.Module:
    with seeded(seed):
        return nn.Sequential(nn.Linear(6, 32), nn.Tanh(), nn.Linear(32, 2))


def test_restores_the_best_epoch_and_stops_after_patience():
    train, val, test = _data(64, 1), _data(200, 2), _data(200, 3)
    model = _model()
    run = train_early_stopping(
        model,
        train,
        val,
        loss_fn=F.cross_entropy,
        max_epochs=300,
        patience=5,
        lr=3e-2,
        batch_size=16,
        eval_data=test,
    )
    assert run.converged and run.epochs == run.best_epoch + 5 < 300
    assert len(run.val_loss) == len(run.curve) == run.epochs
    assert min(run.val_loss) == run.val_loss[run.best_epoch - 1]
    restored = evaluate(model, val, F.cross_entropy)["loss"]
    assert restored == pytest.approx(run.val_loss[run.best_epoch - 1], rel=1e-5)
    assert run.at_budget(1) == run.curve[0] and run.at_budget(10_000) == run.curve[-1]
    assert not model.training


def test_runs_repeat_exactly():
    train, val = _data(64, 1), _data(64, 2)
    a = train_early_stopping(_model(), train, val, loss_fn=F.cross_entropy, max_epochs=8, seed=3)
    b = train_early_stopping(_model(), train, val, loss_fn=F.cross_entropy, max_epochs=8, seed=3)
    assert a.val_loss == b.val_loss and not a.converged and a.epochs == 8


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="max_epochs"):
        train_early_stopping(
            _model(), _data(8, 0), _data(8, 1), loss_fn=F.cross_entropy, max_epochs=0
        )
    with pytest.raises(ValueError, match="curve"):
        train_early_stopping(
            _model(), _data(8, 0), _data(8, 1), loss_fn=F.cross_entropy, max_epochs=1
        ).at_budget(1)


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
