"""The course's device rule, checked without a GPU: created tensors follow their inputs, ``train``
hands the model back where it came from, and eval-mode gradients run with cuDNN off."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils import gradients, importance, layer_pooling, metrics, tasks, training
from course_utils.device import without_cudnn


class _Recorder(nn.Linear):
    """A linear model that records every ``.to(device)`` it gets."""

    def __init__(self) -> None:
        super().__init__(3, 1)
        self.moves: list[torch.device] = []

    def to(self, *args, **kwargs):
        self.moves.append(torch.device(args[0]))
        return super().to(*args, **kwargs)


def _regression(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=g)
    return x, x.sum(dim=1, keepdim=True)


def test_train_hands_the_model_back_on_the_device_it_came_in_on():
    model = _Recorder()
    seen = []

    def step(m, batch):
        seen.append(batch[0].device)
        return m(batch[0]), batch[1]

    training.train(
        model, _regression(), loss_fn=nn.MSELoss(), epochs=1, step=step, progress=False,
        device="cpu:0",
    )  # fmt: skip
    assert model.moves == [torch.device("cpu:0"), torch.device("cpu")]  # there and back
    assert seen and not model.training


def test_train_moves_the_model_back_after_an_error_too():
    model = _Recorder()

    def step(m, batch):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        training.train(
            model, _regression(), loss_fn=nn.MSELoss(), epochs=1, step=step, progress=False,
            device="cpu:0",
        )  # fmt: skip
    assert model.moves[-1] == torch.device("cpu")


def test_train_numbers_on_the_cpu_are_those_of_the_plain_loop():
    """The device rule adds moves only: the loss history is the loop's, bit for bit."""
    x, y = _regression(64)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    reference = [p.detach().clone() for p in model.parameters()]
    hist = training.train(
        model, (x, y), loss_fn=nn.MSELoss(), epochs=3, batch_size=16, progress=False, device="cpu"
    )
    twin = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    with torch.no_grad():
        for p, r in zip(twin.parameters(), reference, strict=True):
            p.copy_(r)
    optimizer = torch.optim.Adam(twin.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y),
        batch_size=16,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    losses = []
    for _ in range(3):
        total = 0.0
        for xb, yb in loader:
            loss = nn.functional.mse_loss(twin(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(twin.parameters(), 1.0)
            optimizer.step()
            total += loss.item() * len(yb)
        losses.append(total / len(x))
    assert hist.train_loss == losses


def test_without_cudnn_switches_it_off_and_restores_the_flag():
    before = torch.backends.cudnn.enabled
    with without_cudnn():
        assert torch.backends.cudnn.enabled is False
    assert torch.backends.cudnn.enabled == before
    with pytest.raises(RuntimeError), without_cudnn():
        raise RuntimeError("boom")
    assert torch.backends.cudnn.enabled == before
    torch.backends.cudnn.enabled = False  # a learner who switched it off keeps it off
    try:
        with without_cudnn():
            pass
        assert torch.backends.cudnn.enabled is False
    finally:
        torch.backends.cudnn.enabled = before


def test_gradients_are_the_same_with_and_without_cudnn_on_the_cpu():
    torch.manual_seed(0)
    lstm = nn.LSTM(2, 5, num_layers=2, batch_first=True).eval()
    x = torch.randn(3, 6, 2, requires_grad=True)
    grads = []
    for off in (False, True):
        x.grad = None
        if off:
            with without_cudnn():
                lstm(x)[0].sum().backward()
        else:
            lstm(x)[0].sum().backward()
        grads.append(x.grad.clone())
    assert torch.equal(grads[0], grads[1])


def _recording(module: nn.Module) -> list[bool]:
    """``torch.backends.cudnn.enabled`` at every forward of ``module``, appended as it runs."""
    flags: list[bool] = []
    module.register_forward_pre_hook(lambda m, a: flags.append(torch.backends.cudnn.enabled))
    return flags


def test_every_eval_mode_gradient_runs_without_cudnn():
    torch.manual_seed(0)
    lstm = nn.LSTM(2, 4, batch_first=True)
    flags = _recording(lstm)
    x = torch.randn(3, 5, 2)
    gradients.input_gradient_norms(lambda z: lstm(z)[0][:, -1], x)
    gradients.connectivity_map(lambda z: lstm(z)[0], x)
    assert flags == [False, False]

    model = layer_pooling.make_classifier("BiLSTM final states", num_layers=3, hidden_size=4)
    flags = _recording(model.eval())
    feats = torch.randn(5, 4, 4)
    importance.gradient_x_input(model, feats)  # 1 no-grad pass (targets), 1 gradient pass
    assert flags == [True, False]
    flags.clear()
    importance.integrated_gradients(model, feats, steps=2)  # targets, gradients, completeness
    assert flags == [True, False, True, True]

    bi = nn.LSTM(4, 3, batch_first=True, bidirectional=True)
    flags = _recording(bi)
    layer_pooling.direction_gradients(bi, feats)
    assert flags == [False, False]


def test_integrated_gradients_creates_its_index_tensors_on_the_inputs_device(monkeypatch):
    created = []
    arange = torch.arange

    def spy(*args, **kwargs):
        created.append(kwargs.get("device"))
        return arange(*args, **kwargs)

    model = layer_pooling.make_classifier("mean of layers", num_layers=2, hidden_size=4).eval()
    feats = torch.randn(3, 3, 4)
    monkeypatch.setattr(torch, "arange", spy)
    importance.integrated_gradients(model, feats, steps=4, batch_size=5)
    assert created == [feats.device, feats.device]


def test_created_tensors_follow_the_inputs_to_another_device():
    """``meta`` tensors have a device but no data: each helper must build its index tensors there."""
    weights = torch.softmax(torch.randn(2, 6), dim=-1).to("meta")
    positions = torch.tensor([[0, 3], [1, 5]])  # on the CPU, as padded_adding_problem returns them
    assert metrics.attention_mass(weights, positions).device.type == "meta"
    x = torch.randn(2, 6, 3).to("meta")
    assert tasks.pad_to_lengths(x, torch.tensor([6, 2])).device.type == "meta"
