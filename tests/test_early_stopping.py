"""Early stopping keeps the best validation epoch, stops after `patience`, and repeats exactly."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.early_stopping import train_early_stopping
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
