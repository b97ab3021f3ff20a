"""Notebook 01's checkers fail on the starter code, fail on trivial stubs, pass on the references."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.exercises import lstm_cell as ex
from tests.notebook_tools import assert_checker_contract, find_notebook

NB = find_notebook("01")


def _keras_step_with(*, g_act=torch.tanh, new_c_in_h=True, order="ifgo", tanh_c=True):
    """One Keras-layout step with a usual mistake switched on."""

    def step(x, h, c, kernel, recurrent_kernel, bias):
        z = x @ kernel + h @ recurrent_kernel + bias
        gates = dict(zip(order, z.chunk(4, dim=-1), strict=True))
        i, f, o = gates["i"].sigmoid(), gates["f"].sigmoid(), gates["o"].sigmoid()
        c_new = f * c + i * g_act(gates["g"])
        shown = c_new if new_c_in_h else c
        return o * (shown.tanh() if tanh_c else shown), c_new

    return step


def _forget_bias_first_layer_only(lstm, value=1.0):
    H = lstm.hidden_size
    with torch.no_grad():
        lstm.bias_ih_l0[H : 2 * H] = value
        lstm.bias_hh_l0[H : 2 * H] = 0.0


def _forget_bias_ignores_value(lstm, value=1.0):
    ex.reference_set_forget_bias(lstm, 1.0)


def _forget_bias_ih_only(lstm, value=1.0):  # forgets that nn.LSTM adds bias_hh too
    H = lstm.hidden_size
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            if name.startswith("bias_ih"):
                p[H : 2 * H] = value


def _forget_bias_new_parameters(lstm, value=1.0):  # replaces the Parameters: no longer trained
    H = lstm.hidden_size
    for name, p in list(lstm.named_parameters()):
        if name.startswith("bias"):
            new = p.detach().clone()
            new[H : 2 * H] = value if name.startswith("bias_ih") else 0.0
            setattr(lstm, name, nn.Parameter(new, requires_grad=False))


CASES = [
    # (starter tag, function name, checker, reference, trivial stubs, wrong answers)
    (
        "starter-keras-step",
        "keras_lstm_step",
        ex.check_keras_lstm_step,
        ex.reference_keras_lstm_step,
        [
            lambda x, h, c, *w: (torch.zeros_like(h), torch.zeros_like(c)),
            lambda x, h, c, *w: (h, c),
        ],
        {
            "sigmoid on g": (_keras_step_with(g_act=torch.sigmoid), "g uses tanh"),
            "old c in h": (_keras_step_with(new_c_in_h=False), "old cell state"),
            "gates read as i, f, o, c": (_keras_step_with(order="ifog"), "order is i, f, c, o"),
            "no tanh on c": (_keras_step_with(tanh_c=False), "left out the tanh"),
            "h and c swapped": (
                lambda *a: ex.reference_keras_lstm_step(*a)[::-1],
                "swapped",
            ),
        },
    ),
    (
        "starter-forget-bias",
        "set_forget_bias",
        ex.check_set_forget_bias,
        ex.reference_set_forget_bias,
        [lambda lstm, value=1.0: None],
        {
            "first layer only": (_forget_bias_first_layer_only, "_reverse"),
            "value ignored": (_forget_bias_ignores_value, "use the `value` argument"),
            "bias_hh left in": (_forget_bias_ih_only, "bias_hh counts too"),
            "Parameters replaced": (_forget_bias_new_parameters, "do not replace the Parameters"),
        },
    ),
    (
        "starter-memory-gain",
        "memory_gain",
        ex.check_memory_gain,
        ex.reference_memory_gain,
        [lambda f: torch.zeros(f.shape[1]), lambda f: f],
        {
            "sum over time": (lambda f: f.sum(dim=0), "a sum over time"),
            "mean over time": (lambda f: f.mean(dim=0), "a mean over time"),
            "last gate only": (lambda f: f[-1], "only the last step"),
            "product over units": (lambda f: f.prod(dim=1), "not over units"),
            "cumulative product": (lambda f: f.cumprod(dim=0), "cumprod keeps every step"),
        },
    ),
]


@pytest.mark.parametrize("tag,name,checker,reference,stubs,wrong", CASES, ids=[c[0] for c in CASES])
def test_checker(tag, name, checker, reference, stubs, wrong) -> None:
    assert_checker_contract(NB, tag, name, checker, reference, stubs, wrong_answers=wrong)


def test_forget_bias_checker_tries_several_values() -> None:
    tried = []

    def recording(lstm, value=1.0):
        tried.append(value)
        ex.reference_set_forget_bias(lstm, value)

    assert ex.check_set_forget_bias(recording).passed
    assert len(set(tried)) >= 3 and 1.0 in tried


def test_keras_step_hints_for_usual_mistakes() -> None:
    def swapped(*args):
        h, c = ex.reference_keras_lstm_step(*args)
        return c, h

    assert "swapped" in str(ex.check_keras_lstm_step(swapped))

    def sigmoid_g(x, h, c, kernel, recurrent_kernel, bias):
        z = x @ kernel + h @ recurrent_kernel + bias
        i, f, g, o = z.sigmoid().chunk(4, dim=-1)
        c_new = f * c + i * g
        return o * c_new.tanh(), c_new

    feedback = ex.check_keras_lstm_step(sigmoid_g)
    assert not feedback.passed and "g uses tanh" in str(feedback)


def test_forget_bias_hints() -> None:
    def first_layer_only(lstm, value=1.0):
        H = lstm.hidden_size
        with torch.no_grad():
            lstm.bias_ih_l0[H : 2 * H] = value
            lstm.bias_hh_l0[H : 2 * H] = 0.0

    feedback = ex.check_set_forget_bias(first_layer_only)
    assert not feedback.passed and "_l1" in str(feedback) and "_reverse" in str(feedback)

    def whole_bias(lstm, value=1.0):
        with torch.no_grad():
            for name, p in lstm.named_parameters():
                if name.startswith("bias_ih"):
                    p.fill_(value)
                elif name.startswith("bias_hh"):
                    p.zero_()

    assert "you also changed" in str(ex.check_set_forget_bias(whole_bias))


def test_memory_gain_reference_matches_autograd() -> None:
    """The reference is what notebook 01 claims: d c_T / d c_0 when the input gate is shut."""
    lstm = nn.LSTM(1, 2, batch_first=True)
    with torch.no_grad():
        for p in lstm.parameters():
            p.zero_()
        lstm.bias_ih_l0[:2] = -30.0  # input gate shut
        lstm.bias_ih_l0[2:4] = torch.tensor([3.0, 0.5])  # forget gates
        lstm.weight_ih_l0[2:4, 0] = 1.0  # forget gates depend on the input
    x = torch.randn(1, 7, 1)
    c0 = torch.zeros(1, 1, 2, requires_grad=True)
    _, (_, c_n) = lstm(x, (torch.zeros(1, 1, 2), c0))
    c_n.sum().backward()
    from course_utils.tracing import trace_lstm

    f = trace_lstm(lstm, x).f[0, 0, 0]  # (T, H)
    torch.testing.assert_close(ex.reference_memory_gain(f), c0.grad.flatten(), rtol=1e-4, atol=1e-7)
