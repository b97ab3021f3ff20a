"""Notebook 01's checkers fail on the starter code, fail on trivial stubs, pass on the references."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.exercises import lstm_cell as ex
from tests.notebook_tools import assert_checker_contract, find_notebook

NB = find_notebook("01")

CASES = [
    # (starter tag, function name, checker, reference, trivial stubs)
    (
        "starter-keras-step",
        "keras_lstm_step",
        ex.check_keras_lstm_step,
        ex.reference_keras_lstm_step,
        [
            lambda x, h, c, *w: (torch.zeros_like(h), torch.zeros_like(c)),
            lambda x, h, c, *w: (h, c),
        ],
    ),
    (
        "starter-forget-bias",
        "set_forget_bias",
        ex.check_set_forget_bias,
        ex.reference_set_forget_bias,
        [lambda lstm, value=1.0: None],
    ),
    (
        "starter-memory-gain",
        "memory_gain",
        ex.check_memory_gain,
        ex.reference_memory_gain,
        [lambda f: torch.zeros(f.shape[1]), lambda f: f],
    ),
]


@pytest.mark.parametrize("tag,name,checker,reference,stubs", CASES, ids=[c[0] for c in CASES])
def test_checker(tag, name, checker, reference, stubs) -> None:
    assert_checker_contract(NB, tag, name, checker, reference, stubs)


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
