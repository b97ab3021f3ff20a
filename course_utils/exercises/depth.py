"""Exercises of notebook 04 (depth and gradients): checkers with feedback, and reference solutions.

Each ``check_*`` takes the learner's function, runs it and the reference on the same weights and
inputs, compares what they compute (counts, gradients, outputs) and returns a
:class:`~course_utils.feedback.Feedback`. Where the result is wrong, the checker also computes the
usual mistakes on the same inputs and names the one the learner made. The ``reference_*`` functions
are the solutions. Every checker is wrapped in :func:`~course_utils.feedback.checker`, so it leaves
the learner's random generators as they were.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import torch
from torch import nn

from ..feedback import Feedback, checker, matches, ran
from ..gradients import input_gradient_norms

__all__ = [
    "SeedStack",
    "check_gradient_norms",
    "check_lstm_parameter_count",
    "check_seed_stack",
    "reference_gradient_norms",
    "reference_lstm_parameter_count",
    "reference_seed_stack",
]

# --------------------------------------------------------------------------------------------------
# Exercise 4.1: how many parameters does nn.LSTM have?


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


def _count_mistakes(i: int, h: int, n: int) -> dict[str, int]:
    """The counts the usual mistakes give, each keyed by the hint that names it."""
    right = reference_lstm_parameter_count(i, h, n)
    mistakes = {
        "that is the Keras count: PyTorch keeps two bias vectors per gate (b_ih and b_hh)": (
            right - 4 * h * n
        ),
        "you left out the recurrent weights: every gate also multiplies h_{t-1} (hidden_size x "
        "hidden_size per gate)": right - 4 * h * h * n,
        "an LSTM layer has 4 gates (i, f, g, o), each with its own weights and biases": right // 4,
    }
    if n > 1:
        mistakes[
            "layers 2, 3, ... read the hidden_size outputs of the layer below, not the input"
        ] = 4 * (h * (i + h) + 2 * h) * n
    return mistakes


def _integral(value: object) -> bool:
    """A count in any number type: an int, ``np.int64`` or a float such as ``4608.0`` (not 1.5)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, numbers.Real) and float(value).is_integer()


@checker
def check_lstm_parameter_count(fn: Callable[[int, int, int], int]) -> Feedback:
    """Compare ``fn(input_size, hidden_size, num_layers)`` with ``nn.LSTM``'s real count."""
    fb = Feedback("Exercise 4.1 - parameters of a stacked nn.LSTM")
    for input_size, hidden_size, num_layers in _COUNT_CASES:
        got = fb.call(fn, input_size, hidden_size, num_layers)
        if not ran(got):
            return fb
        lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers)
        want = sum(p.numel() for p in lstm.parameters())
        if not fb.check(
            matches(got, want, atol=0),  # an int, np.int64 or 4608.0; not 1.5, True or a tensor
            f"nn.LSTM({input_size}, {hidden_size}, num_layers={num_layers}): {want} parameters",
            failure=f"nn.LSTM({input_size}, {hidden_size}, num_layers={num_layers}): you said "
            f"{got!r}, nn.LSTM has {want}",
            hint="per layer: 4 gates x (weights on the layer's input + recurrent weights + 2 biases)"
            if _integral(got)
            else "a parameter count is a whole number: return an int",
        ):
            fb.name_mistake(got, _count_mistakes(input_size, hidden_size, num_layers), atol=0)
    return fb


# --------------------------------------------------------------------------------------------------
# Exercise 4.2: the gradient norm per input step, by hand.


def reference_gradient_norms(
    model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
) -> torch.Tensor:
    """``(B, T)``: the norm over features of d(sum of outputs)/dx at every step.

    A fresh leaf copy of ``x`` gets the gradient: calling ``x.requires_grad_()`` on the caller's
    tensor would make its ``.grad`` accumulate from one call to the next.
    """
    x = x.detach().clone().requires_grad_(True)
    model(x).sum().backward()
    return x.grad.norm(dim=-1)  # (B, T)


class _LastStepModel(nn.Module):
    """An LSTM with a linear head on the last step: a real ``nn.Module``, so a learner's solution may
    call ``model.eval()``, ``model.parameters()`` or ``model.zero_grad()`` on it."""

    def __init__(self, num_layers: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(3, 12, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(12, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(x)[0][:, -1])  # (B, 1)


def _probe_models() -> list[tuple[str, nn.Module]]:
    out = []
    for num_layers in (1, 2):
        torch.manual_seed(10 + num_layers)
        out.append((f"{num_layers}-layer LSTM", _LastStepModel(num_layers)))
    return out


def _raw_gradient(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    leaf = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(leaf).sum(), leaf)
    return grad  # (B, T, F)


@checker
def check_gradient_norms(fn: Callable[[Callable, torch.Tensor], torch.Tensor]) -> Feedback:
    """``fn(model, x)`` must return the ``(B, T)`` gradient norms of ``model(x).sum()`` wrt ``x``.

    Both models get the same ``x`` (as a notebook measures several models on one probe batch), so
    an answer that makes the caller's ``x`` require gradients sees ``x.grad`` accumulate.
    """
    fb = Feedback("Exercise 4.2 - gradient norm per input step")
    x = torch.randn(4, 9, 3, generator=torch.Generator().manual_seed(3))
    x_before = x.detach().clone()
    grads = []
    for k, (name, model) in enumerate(_probe_models()):
        got = fb.call(fn, model, x)
        if not ran(got) or not fb.check_tensor(got):
            return fb
        grads.append(_raw_gradient(model, x_before))
        want = input_gradient_norms(model, x_before)
        if not fb.check_shape(
            got,
            tuple(want.shape),
            f"{name}: the norms",
            hint="take the norm over the feature axis only, grad.norm(dim=-1): one number per "
            "example and step",
        ):
            return fb
        mistakes = {
            "these are the norms of x itself, not of its gradient: call .backward() on "
            "model(x).sum() and read x.grad": x_before.norm(dim=-1),
            f"the norms are {len(x)}x too small: you differentiated the mean of the outputs, "
            "which divides every gradient by the batch size; differentiate model(x).sum()": (
                want / len(x)
            ),
            "these are L1 norms (sum of absolute values): take the L2 norm over the feature "
            "axis, x.grad.norm(dim=-1)": grads[-1].abs().sum(dim=-1),
        }
        if k > 0:  # an answer that makes the caller's x require gradients sees x.grad accumulate
            mistakes[
                "the norms include the first model's gradient: x.grad accumulates, backward() "
                "adds to the .grad of a tensor that already has one. Work on a fresh copy, "
                "x = x.detach().clone().requires_grad_(True), so each call starts from zero"
            ] = sum(grads).norm(dim=-1)
        if not fb.check_close(
            got.detach(),
            want,
            f"{name}: the norms",
            atol=1e-5,
            hint="x needs requires_grad=True before the forward pass; differentiate "
            "model(x).sum(), then take x.grad.norm(dim=-1)",
        ):
            fb.name_mistake(got, mistakes)
            return fb
    return fb


# --------------------------------------------------------------------------------------------------
# Exercise 4.3: article 001's Keras stack, in PyTorch.


class SeedStack(nn.Module):
    """Article 001, Example 1: LSTM(64, return_sequences=True) -> LSTM(32) -> Dense(10)."""

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


def _stack_mistakes(ref: SeedStack, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """What the usual wrong wirings compute with the reference's weights, each named by its hint."""
    h1, _ = ref.lstm1(x)  # (B, T, 64)
    h2, (_, c2) = ref.lstm2(h1)  # (B, T, 32), c2 (1, B, 32)
    one_step, _ = ref.lstm2(h1[:, -1:])  # the second LSTM sees one step: (B, 1, 32)
    return {
        "the second LSTM reads only the first LSTM's last step, as if the first layer had "
        "return_sequences=False; feed it the whole sequence h1 (B, T, 64)": ref.dense(
            one_step[:, -1]
        ),
        "you average over time (mean pooling); Keras' return_sequences=False is the last step "
        "only, h2[:, -1]": ref.dense(h2.mean(dim=1)),
        "the Dense reads the cell state c_n; Keras' Dense gets the hidden state h, the output "
        "h2[:, -1] (= h_n[-1]); c stays inside the layer": ref.dense(c2[-1]),
        "you take the first step, h2[:, 0]; return_sequences=False is the last, h2[:, -1]": ref.dense(
            h2[:, 0]
        ),
    }


@checker
def check_seed_stack(fn: Callable[[int], nn.Module]) -> Feedback:
    """``fn(input_size)`` must build LSTM(64, all steps) -> LSTM(32, last step) -> Linear(10).

    The checker copies the weights of a reference :class:`SeedStack` into the learner's two
    ``nn.LSTM`` and its ``nn.Linear`` and compares the outputs on the same input, so the wiring is
    judged, not only the layer sizes.
    """
    fb = Feedback("Exercise 4.3 - article 001's two-layer Keras model in PyTorch")
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
    # matched by size, not by the order they were registered in: lstm2 may be defined first
    lstms = sorted(
        (m for m in model.modules() if isinstance(m, nn.LSTM)), key=lambda m: -m.hidden_size
    )
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    sizes, layers = [m.hidden_size for m in lstms], [m.num_layers for m in lstms]
    if not fb.check(
        sizes == [64, 32] and layers == [1, 1],
        "two nn.LSTM layers of 64 then 32 units",
        failure=f"found nn.LSTM hidden sizes {sizes} (num_layers {layers}), expected [64, 32]",
        hint="Keras layers of different widths need two nn.LSTM modules: nn.LSTM(num_layers=2) "
        "gives every layer the same width",
    ):
        return fb
    if not fb.check(
        [(m.in_features, m.out_features) for m in linears] == [(32, 10)],
        "one nn.Linear(32, 10) as the Dense(10)",
        failure=f"found nn.Linear layers {[(m.in_features, m.out_features) for m in linears]}, "
        "expected one (32 -> 10)",
        hint="Dense(10) on the second LSTM's 32 units is nn.Linear(32, 10)",
    ):
        return fb
    if not fb.check(
        all(m.batch_first for m in lstms),
        "both LSTMs take batch_first=True inputs (B, T, F)",
        failure="an nn.LSTM has batch_first=False: it reads (T, B, F)",
        hint="pass batch_first=True to both nn.LSTM, as Keras' (batch, timesteps, features)",
    ):
        return fb
    torch.manual_seed(0)
    ref = SeedStack(input_size).eval()
    try:
        with torch.no_grad():
            lstms[0].load_state_dict(ref.lstm1.state_dict())
            lstms[1].load_state_dict(ref.lstm2.state_dict())
            linears[0].load_state_dict(ref.dense.state_dict())
    except RuntimeError as exc:
        fb.fail(
            f"the reference weights do not fit your layers: {exc}",
            "use plain nn.LSTM(input_size, 64) and nn.LSTM(64, 32) (bias on, no proj_size)",
        )
        return fb
    model.eval()
    x = torch.randn(5, 7, input_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
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
        want, mistakes = ref(x), _stack_mistakes(ref, x)
    if not fb.check_close(
        out,
        want,
        "with the article's weights copied in, the outputs",
        hint="feed the first LSTM's full output (all steps) to the second LSTM, then put the "
        "second LSTM's last step h2[:, -1] through the Linear",
    ):
        fb.name_mistake(out, mistakes)
    return fb
