"""Exercises of notebook 01 (the LSTM cell): checkers and reference solutions.

1. ``keras_lstm_step(x, h, c, kernel, recurrent_kernel, bias)``: one LSTM step by hand, with the
   weights laid out as Keras stores them.
2. ``set_forget_bias(lstm, value)``: Keras's ``unit_forget_bias=True`` for a PyTorch ``nn.LSTM``.
3. ``memory_gain(f)``: how much of ``c`` survives a stretch of steps, from the forget gates.

Each checker runs the learner's function and the reference on the same weights and inputs (PyTorch's
own ``nn.LSTMCell`` where it can), compares what they compute, and returns a
:class:`~course_utils.feedback.Feedback`. When the learner's result equals what a usual mistake
computes (sigmoid on g, the old c in h, one layer only, ``value`` ignored, a sum for a product), the
hint names that mistake. Checkers build their cases from their own seeds and leave the learner's
random generators as they were (:func:`~course_utils.feedback.checker`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..feedback import Feedback, checker, matches, ran

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
def _keras_step_mistakes(x, h, c, kernel, recurrent_kernel, bias):
    """What the usual mistakes of exercise 1.1 compute: ``{hint: (h_new, c_new)}``."""
    z = x @ kernel + h @ recurrent_kernel + bias  # (B, 4H)
    i, f, g, o = z.chunk(4, dim=-1)
    i, f, o = i.sigmoid(), f.sigmoid(), o.sigmoid()
    c_sig = f * c + i * g.sigmoid()  # g through a sigmoid
    c_new = f * c + i * g.tanh()
    i2, f2, o2, g2 = z.chunk(4, dim=-1)  # believing Keras orders the gates i, f, o, c
    c_order = f2.sigmoid() * c + i2.sigmoid() * g2.tanh()
    return {
        "you squashed g with a sigmoid: the candidate g uses tanh, so it can write negative values "
        "(i, f, o use sigmoid)": (o * c_sig.tanh(), c_sig),
        "h_new = o * tanh(c_new): you used the old cell state c, not the new one": (
            o * c.tanh(),
            c_new,
        ),
        "you read the gates as i, f, o, c: Keras's order is i, f, c, o, the same as PyTorch's "
        "i, f, g, o": (o2.sigmoid() * c_order.tanh(), c_order),
        "h_new = o * tanh(c_new): you left out the tanh on the cell state": (o * c_new, c_new),
    }


@checker
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
        pair = fb.check_pair(result, "h_new", "c_new")
        if pair is None:
            return fb
        h_new, c_new = pair
        h_ref, c_ref = cell(x, (h, c))
        if not fb.check_shape(
            c_new,
            (4, 5),
            "c_new",
            hint="x @ kernel is (B, 4H): Keras's kernel is "
            "already (F, 4H), so no .T is needed; split it into 4 gates of H",
        ):
            return fb
        if matches((c_new, h_new), (h_ref, c_ref)):
            fb.fail("h_new and c_new are swapped", "return h_new first, then c_new")
            return fb
        mistakes = _keras_step_mistakes(x, h, c, *keras)  # a mistake may spoil c_new, h_new or both
        if not fb.check_close(
            c_new,
            c_ref,
            "c_new",
            hint=(
                "z = x @ kernel + h @ recurrent_kernel + bias; its four quarters are the gates in "
                "the order i, f, g, o (z.chunk(4, dim=-1)); i, f, o use sigmoid, g uses tanh; "
                "c_new = f * c + i * g"
            ),
        ):
            fb.name_mistake((h_new, c_new), mistakes)
        if not fb.check_close(
            h_new,
            h_ref,
            "h_new",
            hint="h_new = o * tanh(c_new): the output gate times the squashed *new* cell state",
        ):
            fb.name_mistake((h_new, c_new), mistakes)
    return fb


@checker
def check_set_forget_bias(fn: Callable[[nn.LSTM, float], None]) -> Feedback:
    """Check ``fn(lstm, value)`` sets the forget-gate bias of every layer and direction only.

    Tries several values (1.0, Keras's default, and others), each on a fresh 2-layer bidirectional
    LSTM, so an answer that ignores ``value`` or only works for 1.0 fails.
    """
    fb = Feedback("Exercise 1.2 - Keras's unit_forget_bias in PyTorch")
    values = (1.0, -2.5, 3.0, 0.0)
    torch.manual_seed(0)
    lstms = [nn.LSTM(3, 4, num_layers=2, bidirectional=True) for _ in values]
    H = 4
    wrong_value, wrong_parts, changed, frozen = [], set(), set(), False
    for value, lstm in zip(values, lstms, strict=True):
        before = {n: p.detach().clone() for n, p in lstm.named_parameters()}
        params_before = dict(lstm.named_parameters())
        if not ran(fb.call(fn, lstm, value)):
            return fb
        suffixes = [
            n[len("bias_ih") :] for n, _ in lstm.named_parameters() if n.startswith("bias_ih")
        ]
        total = {  # what the forget gate adds: b_ih + b_hh
            s: getattr(lstm, "bias_ih" + s)[H : 2 * H] + getattr(lstm, "bias_hh" + s)[H : 2 * H]
            for s in suffixes
        }
        bad = [s for s, b in total.items() if not matches(b, torch.full_like(b, value), atol=1e-6)]
        if bad:
            wrong_value.append(value)
            wrong_parts.update(bad)
        changed.update(
            n
            for n, p in lstm.named_parameters()
            if not torch.equal(
                torch.cat([p[:H], p[2 * H :]]), torch.cat([before[n][:H], before[n][2 * H :]])
            )
        )
        frozen |= any(
            not p.requires_grad or p is not params_before[n] for n, p in lstm.named_parameters()
        )
    all_parts = {"_l0", "_l0_reverse", "_l1", "_l1_reverse"}
    if wrong_value and wrong_parts == all_parts and 1.0 not in wrong_value:
        hint = (
            "it works for 1.0 but not for the other values: use the `value` argument, not the "
            "number 1"
        )
    elif wrong_value and wrong_parts < all_parts:
        hint = (
            f"you missed {sorted(wrong_parts)}: loop over "
            "lstm.named_parameters() to reach every layer (_l1) and the _reverse direction"
        )
    else:
        hint = (
            "the forget gate is the second quarter [H:2H] of bias_ih_l{k} and bias_hh_l{k}; "
            "nn.LSTM adds both biases, so set one to the value and the other to 0 (bias_hh "
            "counts too); loop over lstm.named_parameters() to reach every layer and the "
            "_reverse direction"
        )
    fb.check(
        not wrong_value,
        f"the forget gate's total bias (bias_ih + bias_hh) equals value for value in {values}, "
        "in every layer and direction",
        failure=f"the forget gate's bias_ih + bias_hh is not `value` for value in "
        f"{wrong_value}, in {sorted(wrong_parts)}",
        hint=hint,
    )
    fb.check(
        not changed,
        "the other gates' biases and all weights are unchanged",
        failure=f"you also changed {sorted(changed)}",
        hint="only the slice [H:2H] of the biases belongs to the forget gate",
    )
    fb.check(
        not frozen,
        "the parameters are the same Parameters and still train",
        failure="some parameters were replaced or no longer require grad",
        hint="change values in place under torch.no_grad(); do not replace the Parameters",
    )
    return fb


@checker
def check_memory_gain(fn: Callable[[torch.Tensor], torch.Tensor]) -> Feedback:
    """Check ``fn(f (T, H)) -> (H,)``: the product of the forget gates over time."""
    fb = Feedback("Exercise 1.3 - how much of c survives")
    f = torch.tensor(  # (T=4, H=3): not square, so the time axis cannot be confused with units
        [[0.9, 0.5, 1.0], [0.9, 0.5, 0.2], [0.9, 0.5, 1.0], [0.9, 0.5, 0.7]]
    )
    got = fb.call(fn, f)
    if not ran(got) or not fb.check_tensor(got):
        return fb
    if not fb.check_shape(
        got,
        (3,),
        "memory_gain(f) for f of shape (4, 3)",
        hint="one number per unit: reduce over time (dim=0), not over units (dim=1); "
        "cumprod keeps every step, prod gives the total",
    ):
        return fb
    expected = reference_memory_gain(f)
    mistakes = {
        "a sum over time (f.sum(dim=0)): the factors multiply, c_T = (f_1 * ... * f_T) * c_0": (
            f.sum(dim=0)
        ),
        "a mean over time (f.mean(dim=0)): each step multiplies c again, so take the product": (
            f.mean(dim=0)
        ),
        "only the last step's gate (f[-1]): c_0 passes through every step's gate": f[-1],
        "a power of the first gate (f[0] ** T): the gates change over time, multiply them all": (
            f[0] ** f.shape[0]
        ),
    }
    if not fb.check_close(
        got,
        expected,
        "the gains",
        hint=(
            "with i = 0, c_t = f_t * c_{t-1}, so c_T = (f_1 * f_2 * ... * f_T) * c_0: a product over "
            "time, f.prod(dim=0), not a sum or a mean"
        ),
    ):
        fb.name_mistake(got, {f"you computed {what}": wrong for what, wrong in mistakes.items()})
    return fb
