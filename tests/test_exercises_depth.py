"""Notebook 04's exercise checkers: fail on the starter, on trivial stubs and on the usual mistakes
(each with a hint that names it), pass on the solution, leave the RNG alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from course_utils.exercises import depth as ex
from tests.notebook_tools import assert_checker_contract, find_notebook

NOTEBOOK = find_notebook("04")


# 4.1 ------------------------------------------------------------------------------------------
def keras_count(i, h, n):
    return ex.reference_lstm_parameter_count(i, h, n) - 4 * h * n  # one bias per gate


def first_layer_everywhere(i, h, n):
    return 4 * (h * (i + h) + 2 * h) * n


def no_recurrent_weights(i, h, n):
    return ex.reference_lstm_parameter_count(i, h, n) - 4 * h * h * n


def one_gate(i, h, n):
    return ex.reference_lstm_parameter_count(i, h, n) // 4


COUNT_MISTAKES = {
    "Keras count (one bias)": (keras_count, "two bias vectors"),
    "every layer reads the input": (first_layer_everywhere, "layer below"),
    "no recurrent weights": (no_recurrent_weights, "recurrent weights"),
    "one gate instead of four": (one_gate, "4 gates"),
}


# 4.2 ------------------------------------------------------------------------------------------
def in_place(model, x):
    x.requires_grad_(True)  # the caller's x: its .grad accumulates over calls
    model(x).sum().backward()
    return x.grad.norm(dim=-1)


def of_the_mean(model, x):
    x = x.detach().clone().requires_grad_(True)
    model(x).mean().backward()
    return x.grad.norm(dim=-1)


def l1_norm(model, x):
    x = x.detach().clone().requires_grad_(True)
    model(x).sum().backward()
    return x.grad.abs().sum(dim=-1)


def over_time(model, x):
    x = x.detach().clone().requires_grad_(True)
    model(x).sum().backward()
    return x.grad.norm(dim=1)


GRADIENT_MISTAKES = {
    "x.grad accumulated over calls": (in_place, "accumulates"),
    "gradient of the mean": (of_the_mean, "mean of the outputs"),
    "L1 norm": (l1_norm, "L2 norm"),
    "norm over time": (over_time, "feature axis"),
    "norms of x": (lambda model, x: x.norm(dim=-1), "not of its gradient"),
}


# 4.3 ------------------------------------------------------------------------------------------
class LastStepOfFirst(ex.SeedStack):
    def forward(self, x):
        h1, _ = self.lstm1(x)
        h2, _ = self.lstm2(h1[:, -1:])  # first LSTM used like return_sequences=False
        return self.dense(h2[:, -1])


class MeanPool(ex.SeedStack):
    def forward(self, x):
        return self.dense(self.lstm2(self.lstm1(x)[0])[0].mean(dim=1))


class DenseOnCell(ex.SeedStack):
    def forward(self, x):
        _, (_, c_n) = self.lstm2(self.lstm1(x)[0])
        return self.dense(c_n[-1])


class OneTwoLayerLSTM(nn.Module):
    def __init__(self, input_size):
        super().__init__()
        self.lstm = nn.LSTM(input_size, 64, num_layers=2, batch_first=True)
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.lstm(x)[0][:, -1])


class AllSteps(ex.SeedStack):
    def forward(self, x):
        return self.dense(self.lstm2(self.lstm1(x)[0])[0])  # (B, T, 10)


class NotBatchFirst(nn.Module):
    def __init__(self, input_size):
        super().__init__()
        self.lstm1, self.lstm2 = nn.LSTM(input_size, 64), nn.LSTM(64, 32)
        self.dense = nn.Linear(32, 10)

    def forward(self, x):
        return self.dense(self.lstm2(self.lstm1(x)[0])[0][:, -1])


STACK_MISTAKES = {
    "first LSTM like return_sequences=False": (LastStepOfFirst, "return_sequences=False"),
    "mean pooling over time": (MeanPool, "mean pooling"),
    "Dense on c_n": (DenseOnCell, "cell state"),
    "nn.LSTM(num_layers=2)": (OneTwoLayerLSTM, "two nn.LSTM modules"),
    "every step returned": (AllSteps, "h2[:, -1]"),
    "batch_first forgotten": (NotBatchFirst, "batch_first=True"),
}

CASES = [
    # (starter tag, function name, checker, trivial stubs, reference solution, wrong answers)
    (
        "starter-4.1",
        "lstm_parameter_count",
        ex.check_lstm_parameter_count,
        [lambda i, h, n: 0, lambda i, h, n: 1.5],
        ex.reference_lstm_parameter_count,
        COUNT_MISTAKES,
    ),
    (
        "starter-4.2",
        "gradient_norms",
        ex.check_gradient_norms,
        [lambda model, x: torch.zeros(x.shape[:2])],
        ex.reference_gradient_norms,
        GRADIENT_MISTAKES,
    ),
    (
        "starter-4.3",
        "seed_stack",
        ex.check_seed_stack,
        [lambda input_size: nn.Identity()],
        ex.reference_seed_stack,
        STACK_MISTAKES,
    ),
]


@pytest.mark.parametrize(("tag", "name", "check", "stubs", "solution", "wrong"), CASES)
def test_checker_contract(tag, name, check, stubs, solution, wrong):
    assert_checker_contract(NOTEBOOK, tag, name, check, solution, stubs, wrong_answers=wrong)


def test_parameter_count_reference_matches_nn_lstm():
    for args in [(3, 7, 1), (1, 4, 5), (10, 2, 2)]:
        lstm = nn.LSTM(args[0], args[1], num_layers=args[2])
        assert ex.reference_lstm_parameter_count(*args) == sum(p.numel() for p in lstm.parameters())


def test_gradient_norms_reference_leaves_the_callers_x_alone():
    x = torch.randn(2, 5, 3)
    lstm, head = nn.LSTM(3, 4, batch_first=True), nn.Linear(4, 1)
    ex.reference_gradient_norms(lambda v: head(lstm(v)[0][:, -1]), x)
    assert not x.requires_grad and x.grad is None


def test_seed_stack_checker_accepts_another_correct_wiring():
    class Sequentialish(nn.Module):  # same computation, other attribute names
        def __init__(self, input_size):
            super().__init__()
            self.first = nn.LSTM(input_size, 64, batch_first=True)
            self.second = nn.LSTM(64, 32, batch_first=True)
            self.out = nn.Linear(32, 10)

        def forward(self, x):
            _, (h_n, _) = self.second(self.first(x)[0])
            return self.out(h_n[-1])  # h_n[-1] == output[:, -1]

    assert ex.check_seed_stack(Sequentialish).passed


# Correct answers in other forms: the checkers must pass them (issue 17).
CORRECT_COUNTS = {
    "a float with a whole value (4608.0)": lambda i, h, n: float(
        ex.reference_lstm_parameter_count(i, h, n)
    ),
    "np.int64 (a NumPy formula)": lambda i, h, n: (
        np.int64(4) * (h * i + h * h + 2 * h) + np.int64(4) * (n - 1) * (2 * h * h + 2 * h)
    ),
}


@pytest.mark.parametrize("answer", list(CORRECT_COUNTS), ids=list(CORRECT_COUNTS))
def test_parameter_count_accepts_any_integral_number(answer):
    fb = ex.check_lstm_parameter_count(CORRECT_COUNTS[answer])
    assert fb.passed, str(fb)


def test_parameter_count_rejects_a_non_integral_float():
    fb = ex.check_lstm_parameter_count(
        lambda i, h, n: ex.reference_lstm_parameter_count(i, h, n) + 0.5
    )
    assert not fb.passed and "whole number" in str(fb), str(fb)


def calls_eval(model, x):
    model.eval()  # a careful solution: no dropout while measuring
    x = x.detach().clone().requires_grad_(True)
    model(x).sum().backward()
    return x.grad.norm(dim=-1)


def uses_autograd_grad(model, x):
    leaf = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(leaf).sum(), leaf)
    return grad.norm(dim=-1)


@pytest.mark.parametrize("solution", [calls_eval, uses_autograd_grad])
def test_gradient_norms_checker_accepts_other_correct_solutions(solution):
    fb = ex.check_gradient_norms(solution)
    assert fb.passed, str(fb)


class SecondRegisteredFirst(nn.Module):  # lstm2 defined before lstm1: the same model
    def __init__(self, input_size):
        super().__init__()
        self.lstm2 = nn.LSTM(64, 32, batch_first=True)
        self.lstm1 = nn.LSTM(input_size, 64, batch_first=True)
        self.dense = nn.Linear(32, 10)

    def forward(self, x):
        return self.dense(self.lstm2(self.lstm1(x)[0])[0][:, -1])


def test_seed_stack_checker_matches_layers_by_size_not_order():
    fb = ex.check_seed_stack(SecondRegisteredFirst)
    assert fb.passed, str(fb)
