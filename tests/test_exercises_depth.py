"""Notebook 03's exercise checkers: fail on the starter, fail on a trivial stub, pass on the solution."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.exercises import depth as ex
from tests.notebook_tools import assert_checker_contract, find_notebook

NOTEBOOK = find_notebook("03")

CASES = [
    # (starter tag, function name, checker, trivial stub, reference solution)
    (
        "starter-3.1",
        "lstm_parameter_count",
        ex.check_lstm_parameter_count,
        lambda i, h, n: 0,
        ex.reference_lstm_parameter_count,
    ),
    (
        "starter-3.2",
        "gradient_norms",
        ex.check_gradient_norms,
        lambda model, x: torch.zeros(x.shape[:2]),
        ex.reference_gradient_norms,
    ),
    (
        "starter-3.3",
        "seed_stack",
        ex.check_seed_stack,
        lambda input_size: nn.Identity(),
        ex.reference_seed_stack,
    ),
]


@pytest.mark.parametrize(("tag", "name", "check", "stub", "solution"), CASES)
def test_checker_contract(tag, name, check, stub, solution):
    assert_checker_contract(NOTEBOOK, tag, name, check, solution, [stub])


def test_parameter_count_reference_matches_nn_lstm():
    for args in [(3, 7, 1), (1, 4, 5), (10, 2, 2)]:
        lstm = nn.LSTM(args[0], args[1], num_layers=args[2])
        assert ex.reference_lstm_parameter_count(*args) == sum(p.numel() for p in lstm.parameters())


def test_parameter_count_feedback_names_the_usual_mistakes():
    keras = ex.check_lstm_parameter_count(lambda i, h, n: 4 * (h * (i + h) + h) * n)
    assert not keras.passed and "two bias vectors" in str(keras)
    first_layer_everywhere = ex.check_lstm_parameter_count(
        lambda i, h, n: 4 * (h * (i + h) + 2 * h) * n
    )
    assert not first_layer_everywhere.passed and "layer below" in str(first_layer_everywhere)


def test_gradient_norms_feedback_catches_norms_of_x():
    feedback = ex.check_gradient_norms(lambda model, x: x.norm(dim=-1))
    assert not feedback.passed and "not of its gradient" in str(feedback)


def test_seed_stack_feedback_catches_one_lstm_with_two_layers():
    class Wrong(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.head = nn.LSTM(3, 64, num_layers=2, batch_first=True), nn.Linear(64, 10)

        def forward(self, x):
            return self.head(self.lstm(x)[0][:, -1])

    feedback = ex.check_seed_stack(lambda input_size: Wrong())
    assert not feedback.passed and "two nn.LSTM modules" in str(feedback)


def test_seed_stack_feedback_catches_all_steps_returned():
    class AllSteps(ex.SeedStack):
        def forward(self, x):
            return self.dense(self.lstm2(self.lstm1(x)[0])[0])  # (B, T, 10)

    feedback = ex.check_seed_stack(AllSteps)
    assert not feedback.passed and "h2[:, -1]" in str(feedback)
