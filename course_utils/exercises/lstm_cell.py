"""Exercises of notebook 01 (the LSTM cell): checkers and reference solutions.

1. ``keras_lstm_step(x, h, c, kernel, recurrent_kernel, bias)``: one LSTM step by hand, with the
   weights laid out as Keras stores them.
2. ``set_forget_bias(lstm, value)``: Keras's ``unit_forget_bias=True`` for a PyTorch ``nn.LSTM``.
3. ``memory_gain(f)``: how much of ``c`` survives a stretch of steps, from the forget gates.

Each checker runs the learner's function on cases with known answers (PyTorch's own ``nn.LSTMCell``
where it can) and returns a :class:`~course_utils.feedback.Feedback` with hints for usual mistakes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..feedback import Feedback, ran

__all__ = [
    "check_keras_lstm_step",
    "check_memory_gain",
    "check_set_forget_bias",
    "reference_keras_lstm_step",
    "reference_memory_gain",
    "reference_set_forget_bias",
]


# ---------------------------------------------------------------------------------- references
def reference_keras_lstm_step(
    x: torch.Tensor,
    h: torch.Tensor,
    c: torch.Tensor,
    kernel: torch.Tensor,
    recurrent_kernel: torch.Tensor,
    bias: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step with Keras's weight layout; returns ``(h_new, c_new)``.

    Shapes: ``x (B, F)``; ``h, c (B, H)``; ``kernel (F, 4H)``; ``recurrent_kernel (H, 4H)``;
    ``bias (4H,)`` (one bias, where PyTorch has two). Gate order i, f, c (PyTorch's g), o.
    """
    z = x @ kernel + h @ recurrent_kernel + bias  # (B, 4H), gates in the order i, f, g, o
    i, f, g, o = z.chunk(4, dim=-1)
    c_new = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c_new.tanh(), c_new


def reference_set_forget_bias(lstm: nn.LSTM, value: float = 1.0) -> None:
    """Make every layer's and direction's forget-gate bias ``b_ih + b_hh`` equal ``value``."""
    H = lstm.hidden_size
    with torch.no_grad():
        for name, param in lstm.named_parameters():
            if name.startswith("bias_ih"):
                param[H : 2 * H] = value  # the forget gate is the second quarter
            elif name.startswith("bias_hh"):
                param[H : 2 * H] = 0.0


def reference_memory_gain(f: torch.Tensor) -> torch.Tensor:
    """``d c_T / d c_0`` along the cell path: the product of the forget gates over time.

    ``f (T, H)`` -> ``(H,)``.
    """
    return f.prod(dim=0)


# ---------------------------------------------------------------------------------- checkers
def check_keras_lstm_step(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Feedback:
    """Check ``fn(x, h, c, kernel, recurrent_kernel, bias) -> (h_new, c_new)`` vs ``nn.LSTMCell``."""
    fb = Feedback("Exercise 1.1 - one LSTM step with Keras's weights")
    gen = torch.Generator().manual_seed(11)
    cell = nn.LSTMCell(3, 5)
    with torch.no_grad():
        for p in cell.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.7)
    x, h, c = (torch.randn(4, n, generator=gen) for n in (3, 5, 5))
    # the same cell as Keras stores it: transposed matrices and one summed bias
    keras = (
        cell.weight_ih.T.contiguous(),
        cell.weight_hh.T.contiguous(),
        cell.bias_ih + cell.bias_hh,
    )
    with torch.no_grad():
        result = fb.call(fn, x, h, c, *keras)
        if not ran(result):
            return fb
        if not fb.check(
            isinstance(result, tuple) and len(result) == 2,
            "returns a pair (h_new, c_new)",
            failure=f"expected a pair (h_new, c_new), got {type(result).__name__}",
            hint="end with `return h_new, c_new`",
        ):
            return fb
        h_new, c_new = result
        if not (fb.check_tensor(h_new, "h_new") and fb.check_tensor(c_new, "c_new")):
            return fb
        h_ref, c_ref = cell(x, (h, c))
        if fb.check_shape(
            c_new,
            (4, 5),
            "c_new",
            hint="x @ kernel is (B, 4H): Keras's kernel is "
            "already (F, 4H), so no .T is needed; split it into 4 gates of H",
        ):
            if torch.allclose(c_new, h_ref, atol=1e-5) and torch.allclose(h_new, c_ref, atol=1e-5):
                fb.fail("h_new and c_new are swapped", "return h_new first, then c_new")
                return fb
            fb.check_close(
                c_new,
                c_ref,
                "c_new",
                hint=(
                    "z = x @ kernel + h @ recurrent_kernel + bias; its four quarters are the gates in "
                    "the order i, f, g, o (z.chunk(4, dim=-1)); i, f, o use sigmoid, g uses tanh; "
                    "c_new = f * c + i * g"
                ),
            )
            fb.check_close(
                h_new,
                h_ref,
                "h_new",
                hint="h_new = o * tanh(c_new): the output gate times the squashed *new* cell state",
            )
    return fb


def check_set_forget_bias(fn: Callable[[nn.LSTM, float], None]) -> Feedback:
    """Check ``fn(lstm, value)`` sets the forget-gate bias of every layer and direction only."""
    fb = Feedback("Exercise 1.2 - Keras's unit_forget_bias in PyTorch")
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    before = {n: p.detach().clone() for n, p in lstm.named_parameters()}
    if not ran(fb.call(fn, lstm, 1.0)):
        return fb
    H = lstm.hidden_size
    suffixes = [n[len("bias_ih") :] for n, _ in lstm.named_parameters() if n.startswith("bias_ih")]
    total = {
        s: getattr(lstm, "bias_ih" + s)[H : 2 * H] + getattr(lstm, "bias_hh" + s)[H : 2 * H]
        for s in suffixes
    }  # what the forget gate adds: b_ih + b_hh
    wrong = [s for s, b in total.items() if not torch.allclose(b, torch.ones(H))]
    fb.check(
        not wrong,
        "the forget gate's total bias (bias_ih + bias_hh) is 1 in every layer and direction",
        failure=f"the forget gate's bias_ih + bias_hh is not 1 for {wrong}",
        hint="the forget gate is the second quarter [H:2H] of bias_ih_l{k} and bias_hh_l{k}; "
        "nn.LSTM adds both biases, so set one to the value and the other to 0; loop over "
        "lstm.named_parameters() to reach every layer and the _reverse direction",
    )
    changed = [
        n
        for n, p in lstm.named_parameters()
        if not torch.equal(
            torch.cat([p[:H], p[2 * H :]]), torch.cat([before[n][:H], before[n][2 * H :]])
        )
    ]
    fb.check(
        not changed,
        "the other gates' biases and all weights are unchanged",
        failure=f"you also changed {changed}",
        hint="only the slice [H:2H] of the biases belongs to the forget gate",
    )
    fb.check(
        all(p.requires_grad for p in lstm.parameters()),
        "the parameters still train",
        failure="some parameters no longer require grad",
        hint="change values in place under torch.no_grad(); do not replace the Parameters",
    )
    return fb


def check_memory_gain(fn: Callable[[torch.Tensor], torch.Tensor]) -> Feedback:
    """Check ``fn(f (T, H)) -> (H,)``: the product of the forget gates over time."""
    fb = Feedback("Exercise 1.3 - how much of c survives")
    f = torch.tensor([[0.9, 0.5, 1.0], [0.9, 0.5, 0.2], [0.9, 0.5, 1.0]])  # (T=3, H=3)
    got = fb.call(fn, f)
    if not ran(got) or not fb.check_tensor(got):
        return fb
    if not fb.check_shape(
        got,
        (3,),
        "memory_gain(f) for f of shape (3, 3)",
        hint="one number per unit: reduce over time, dim=0",
    ):
        return fb
    fb.check_close(
        got,
        reference_memory_gain(f),
        "the gains",
        hint=(
            "with i = 0, c_t = f_t * c_{t-1}, so c_T = (f_1 * f_2 * ... * f_T) * c_0: a product over "
            "time, f.prod(dim=0), not a sum or a mean"
        ),
    )
    return fb
