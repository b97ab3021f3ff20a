"""The training loop: seeded batches, a history, evaluation; and `fit`, which also seeds the weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils import seeding, tasks, training
from course_utils.early_stopping import (
    EarlyStopped,
    Plateau,
    train_early_stopping,
    train_to_plateau,
)


class _Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(2, 16, batch_first=True)
        self.head = nn.Linear(16, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1]).squeeze(-1)


def test_train_learns_is_repeatable_and_records_history():
    task = tasks.adding_problem(256, 10, seed=0)
    x, y = task.x, task.y

    def run():
        seeding.seed_everything(0)
        model = _Regressor()
        hist = training.train(
            model,
            (x, y),
            loss_fn=nn.functional.mse_loss,
            epochs=8,
            lr=1e-2,
            val_data=(x[:64], y[:64]),
            progress=False,
        )
        return model, hist

    model, hist = run()
    _, hist2 = run()
    assert hist.epochs == 8 and len(hist.val_loss) == 8
    assert hist.train_loss == hist2.train_loss  # same seed, same batches, same numbers
    assert hist.train_loss[-1] < 0.5 * hist.train_loss[0]
    assert not model.training  # left in eval mode
    result = training.evaluate(model, (x[:64], y[:64]), nn.functional.mse_loss)
    assert result["loss"] == pytest.approx(hist.val_loss[-1], rel=1e-5)


def test_train_tracks_metrics_and_validates_input():
    torch.manual_seed(0)
    x = torch.randn(64, 5, 3)
    y = (x[:, :, 0].sum(1) > 0).long()
    model = nn.Sequential(nn.Flatten(), nn.Linear(15, 2))
    hist = training.train(
        model,
        (x, y),
        loss_fn=nn.functional.cross_entropy,
        epochs=3,
        val_data=(x, y),
        metrics={"accuracy": training.accuracy},
        progress=False,
    )
    assert set(hist.last()) == {"train_loss", "val_loss", "accuracy"}
    assert 0 <= hist.last()["accuracy"] <= 1
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        training.train(model, (x, y), loss_fn=nn.functional.cross_entropy, epochs=0)
    with pytest.raises(ValueError, match="same first dimension"):
        training.train(model, (x, y[:3]), loss_fn=nn.functional.cross_entropy, epochs=1)
    with pytest.raises(ValueError, match="accuracy expects logits"):
        training.accuracy(torch.zeros(4, 2), torch.zeros(5, dtype=torch.long))
    assert training.count_parameters(model) == 15 * 2 + 2


def _classes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    with seeding.seeded(seed) as g:
        x = torch.randn(n, 6, generator=g)
        y = (x[:, 0] + 0.3 * torch.randn(n, generator=g) > 0).long()
    return x, y


def _classifier() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Dropout(0.1), nn.Linear(16, 2))


_TRAIN, _VAL = _classes(96, 1), _classes(48, 2)
#: each trainer with what it needs besides (model, train_data, seed=); how to read its record
_TRAINERS = {
    "train": (
        training.train,
        {"loss_fn": nn.functional.cross_entropy, "epochs": 3, "val_data": _VAL, "progress": False},
        lambda history: history.train_loss + history.val_loss,
    ),
    "train_early_stopping": (
        train_early_stopping,
        {"val_data": _VAL, "loss_fn": nn.functional.cross_entropy, "max_epochs": 4},
        lambda history: history.val_loss,
    ),
    "train_to_plateau": (
        train_to_plateau,
        {"val_data": _VAL, "max_epochs": 4, "patience": 2, "lr": 1e-2, "batch_size": 32},
        lambda history: history.val_accuracy,
    ),
}


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _same(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(_weights(a), _weights(b), strict=True))


@pytest.mark.parametrize("name", list(_TRAINERS))
def test_fit_repeats_at_a_seed_and_differs_across_seeds_with_every_trainer(name):
    trainer, kwargs, record = _TRAINERS[name]

    def run(seed):
        torch.manual_seed(1234)  # whatever the caller drew before, fit starts from `seed`
        return training.fit(_classifier, _TRAIN, seed=seed, trainer=trainer, **kwargs)

    first, again, other = run(0), run(0), run(1)
    assert isinstance(first, training.Fitted) and not first.model.training
    assert _same(first.model, again.model) and record(first.history) == record(again.history)
    assert not _same(first.model, other.model)
    assert record(first.history) != record(other.history)
    expected = {"train": training.History, "train_early_stopping": EarlyStopped}
    assert isinstance(first.history, expected.get(name, Plateau))


def test_fit_is_the_seed_build_train_ritual_also_for_twin_runs():
    # notebooks that move to fit must print the numbers they printed before
    kwargs = {"loss_fn": nn.functional.cross_entropy, "epochs": 2, "progress": False}
    seeding.seed_everything(5)
    model = _classifier()
    history = training.train(model, _TRAIN, seed=5, **kwargs)
    after = torch.rand(1)  # what the next cell draws
    fitted_model, fitted_history = training.fit(_classifier, _TRAIN, seed=5, **kwargs)
    assert _same(model, fitted_model) and history.train_loss == fitted_history.train_loss
    assert torch.equal(torch.rand(1), after)
    # a twin run: the initial weights from `init`, the batch order from `seed`
    seeding.seed_everything(6)
    twin = _classifier()
    twin_history = training.train(twin, _TRAIN, seed=5, **kwargs)
    fitted_twin, fitted_twin_history = training.fit(_classifier, _TRAIN, seed=5, init=6, **kwargs)
    assert _same(twin, fitted_twin) and twin_history.train_loss == fitted_twin_history.train_loss


def test_fit_cannot_be_called_without_a_seed_or_with_a_built_model():
    kwargs = {"loss_fn": nn.functional.cross_entropy, "epochs": 1, "progress": False}
    with pytest.raises(TypeError, match="seed"):
        training.fit(_classifier, _TRAIN, **kwargs)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="builds the model"):
        training.fit(_classifier(), _TRAIN, seed=0, **kwargs)
    with pytest.raises(TypeError, match="must return an nn.Module"):
        training.fit(lambda: None, _TRAIN, seed=0, **kwargs)
    with pytest.raises(ValueError, match="non-negative int"):
        training.fit(_classifier, _TRAIN, seed=-1, **kwargs)
    with pytest.raises(ValueError, match="non-negative int"):
        training.fit(_classifier, _TRAIN, seed=0, init=-1, **kwargs)
