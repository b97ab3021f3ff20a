"""Exercises of notebook 03 (depth and gradients): checkers with feedback, and reference solutions.

Each ``check_*`` takes the learner's function, runs it on cases whose answer is known and returns a
:class:`~course_utils.feedback.Feedback`. The ``reference_*`` functions are the solutions (the tests
prove every checker passes on them and fails on the notebook's starter and on a trivial stub).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..feedback import Feedback, ran
from ..gradients import input_gradient_norms

# --------------------------------------------------------------------------------------------------
# Exercise 3.1: how many parameters does nn.LSTM have?


def reference_lstm_parameter_count(input_size: int, hidden_size: int, num_layers: int) -> int:
    """Per layer: 4 gates x (input weights + recurrent weights + two bias vectors).

    Layer 1 reads ``input_size`` features; every higher layer reads the ``hidden_size`` outputs of
    the layer below. PyTorch keeps two biases per gate (``b_ih`` and ``b_hh``), Keras one.
    """
    total = 0
    for layer in range(num_layers):
        n_in = input_size if layer == 0 else hidden_size
        total += 4 * (hidden_size * n_in + hidden_size * hidden_size + 2 * hidden_size)
    return total


_COUNT_CASES = ((2, 32, 1), (2, 32, 3), (1, 16, 2), (5, 8, 4))


def check_lstm_parameter_count(fn: Callable[[int, int, int], int]) -> Feedback:
    """Compare ``fn(input_size, hidden_size, num_layers)`` with ``nn.LSTM``'s real count."""
    fb = Feedback("Exercise 3.1 - parameters of a stacked nn.LSTM")
    for input_size, hidden_size, num_layers in _COUNT_CASES:
        got = fb.call(fn, input_size, hidden_size, num_layers)
        if not ran(got):
            return fb
        lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers)
        want = sum(p.numel() for p in lstm.parameters())
        keras = (
            reference_lstm_parameter_count(input_size, hidden_size, num_layers)
            - 4 * hidden_size * num_layers
        )
        first_only = 4 * (hidden_size * (input_size + hidden_size) + 2 * hidden_size) * num_layers
        if got == keras:
            hint = (
                "that is the Keras count: PyTorch keeps two bias vectors per gate (b_ih and b_hh)"
            )
        elif got == first_only and num_layers > 1:
            hint = "layers 2, 3, ... read the hidden_size outputs of the layer below, not the input"
        else:
            hint = (
                "per layer: 4 gates x (weights on the layer's input + recurrent weights + 2 biases)"
            )
        ok = isinstance(got, int) and not isinstance(got, bool) and got == want
        fb.check(
            ok,
            f"nn.LSTM({input_size}, {hidden_size}, num_layers={num_layers}): {want} parameters",
            failure=f"nn.LSTM({input_size}, {hidden_size}, num_layers={num_layers}): you said "
            f"{got!r}, nn.LSTM has {want}",
            hint=hint,
        )
    return fb


# --------------------------------------------------------------------------------------------------
# Exercise 3.2: the gradient norm per input step, by hand.


def reference_gradient_norms(
    model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
) -> torch.Tensor:
    """``(B, T)``: the norm over features of d(sum of outputs)/dx at every step."""
    x = x.detach().clone().requires_grad_(True)
    model(x).sum().backward()
    return x.grad.norm(dim=-1)  # (B, T)


def _probe_models() -> list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]]:
    out = []
    for num_layers in (1, 2):
        torch.manual_seed(10 + num_layers)
        lstm, head = nn.LSTM(3, 12, num_layers=num_layers, batch_first=True), nn.Linear(12, 1)
        out.append(
            (f"{num_layers}-layer LSTM", lambda x, lstm=lstm, head=head: head(lstm(x)[0][:, -1]))
        )
    return out


def check_gradient_norms(fn: Callable[[Callable, torch.Tensor], torch.Tensor]) -> Feedback:
    """``fn(model, x)`` must return the ``(B, T)`` gradient norms of ``model(x).sum()`` wrt ``x``."""
    fb = Feedback("Exercise 3.2 - gradient norm per input step")
    x = torch.randn(4, 9, 3, generator=torch.Generator().manual_seed(3))
    for name, model in _probe_models():
        got = fb.call(fn, model, x)
        if not ran(got) or not fb.check_tensor(got):
            return fb
        want = input_gradient_norms(model, x)
        if not fb.check_shape(
            got,
            tuple(want.shape),
            f"{name}: the norms",
            hint="take the norm over the feature axis only: grad.norm(dim=-1)",
        ):
            return fb
        if torch.allclose(got.detach(), (x.norm(dim=-1)), atol=1e-6):
            fb.fail(
                f"{name}: these are the norms of x itself, not of its gradient",
                "call .backward() on model(x).sum() and read x.grad",
            )
            return fb
        fb.check_close(
            got,
            want,
            f"{name}: the norms",
            atol=1e-5,
            hint="x needs requires_grad=True before the forward pass; differentiate "
            "model(x).sum(), then take x.grad.norm(dim=-1)",
        )
    return fb


# --------------------------------------------------------------------------------------------------
# Exercise 3.3: the seed's Keras stack, in PyTorch.


class SeedStack(nn.Module):
    """Seed 001, Example 1: LSTM(64, return_sequences=True) -> LSTM(32) -> Dense(10)."""

    def __init__(self, input_size: int) -> None:
        super().__init__()
        self.lstm1 = nn.LSTM(
            input_size, 64, batch_first=True
        )  # return_sequences=True: keep all steps
        self.lstm2 = nn.LSTM(64, 32, batch_first=True)
        self.dense = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h1, _ = self.lstm1(x)  # (B, T, 64)
        h2, _ = self.lstm2(h1)  # (B, T, 32)
        return self.dense(h2[:, -1])  # return_sequences=False: the last step only -> (B, 10)


def reference_seed_stack(input_size: int) -> nn.Module:
    return SeedStack(input_size)


def check_seed_stack(fn: Callable[[int], nn.Module]) -> Feedback:
    """``fn(input_size)`` must build LSTM(64, all steps) -> LSTM(32, last step) -> Linear(10)."""
    fb = Feedback("Exercise 3.3 - the seed's two-layer Keras model in PyTorch")
    input_size = 3
    model = fb.call(fn, input_size)
    if not ran(model):
        return fb
    if not fb.check(
        isinstance(model, nn.Module),
        "returns an nn.Module",
        failure=f"returns {type(model).__name__}, not an nn.Module",
        hint="return the model object, e.g. an instance of your nn.Module subclass",
    ):
        return fb
    sizes = [m.hidden_size for m in model.modules() if isinstance(m, nn.LSTM)]
    layers = [m.num_layers for m in model.modules() if isinstance(m, nn.LSTM)]
    fb.check(
        sizes == [64, 32] and layers == [1, 1],
        "two nn.LSTM layers of 64 then 32 units",
        failure=f"found nn.LSTM hidden sizes {sizes} (num_layers {layers}), expected [64, 32]",
        hint="Keras layers of different widths need two nn.LSTM modules: nn.LSTM(num_layers=2) "
        "gives every layer the same width",
    )
    want = sum(p.numel() for p in SeedStack(input_size).parameters())
    got_params = sum(p.numel() for p in model.parameters())
    fb.check(
        got_params == want,
        f"{want} parameters, as the reference",
        failure=f"{got_params} parameters, expected {want}",
        hint="LSTM(3->64), LSTM(64->32) and Linear(32->10); batch_first=True",
    )
    x = torch.randn(5, 7, input_size, generator=torch.Generator().manual_seed(0))
    out = fb.call(model, x)
    if not ran(out) or not fb.check_tensor(out, "the output"):
        return fb
    if not fb.check_shape(
        out,
        (5, 10),
        "the output for x of shape (5, 7, 3)",
        hint="the second LSTM returns every step: keep only the last, h2[:, -1]",
    ):
        return fb
    norms = input_gradient_norms(model, x)
    fb.check(
        bool((norms[:, 0] > 0).all()) and bool((norms[:, -1] > 0).all()),
        "the output depends on the first and on the last input step",
        failure="the output does not depend on every input step",
        hint="feed the first LSTM's full output (all steps) to the second LSTM, then take the "
        "second LSTM's last step",
    )
    return fb
