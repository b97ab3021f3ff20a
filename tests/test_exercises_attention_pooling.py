"""Notebook 04's exercise checkers: fail on the starter, fail on a trivial stub, pass on the solution."""

from __future__ import annotations

import pytest
import torch

from course_utils.attention_pooling import AdditiveAttentionPooling
from course_utils.exercises import attention_pooling as ex
from tests.notebook_tools import assert_checker_contract, find_notebook

NOTEBOOK = find_notebook("04")

CASES = [
    (
        "starter-4.1",
        "masked_softmax",
        ex.check_masked_softmax,
        lambda scores, mask: torch.softmax(scores, dim=-1),
        ex.reference_masked_softmax,
    ),
    (
        "starter-4.2",
        "seed_to_additive",
        ex.check_seed_to_additive,
        lambda layer: AdditiveAttentionPooling(layer.hidden_size, layer.W1.out_features),
        ex.reference_seed_to_additive,
    ),
    (
        "starter-4.3",
        "additive_pool",
        ex.check_additive_pool,
        lambda h, mask, proj, query: (h.mean(dim=1), torch.full(h.shape[:2], 1 / h.shape[1])),
        ex.reference_additive_pool,
    ),
]


@pytest.mark.parametrize(("tag", "name", "check", "stub", "solution"), CASES)
def test_checker_contract(tag, name, check, stub, solution):
    assert_checker_contract(NOTEBOOK, tag, name, check, solution, [stub])


def test_masked_softmax_feedback_catches_masking_after_the_softmax():
    def after(scores, mask):
        return torch.softmax(scores, dim=-1) * mask  # zeros on padding, but rows no longer sum to 1

    feedback = ex.check_masked_softmax(after)
    assert not feedback.passed and "sum to 1" in str(feedback)


def test_seed_to_additive_feedback_catches_forgotten_biases_and_mutation():
    def weights_only(layer):
        out = AdditiveAttentionPooling(layer.hidden_size, layer.W1.out_features)
        with torch.no_grad():
            out.proj.weight.copy_(layer.W1.weight + layer.W2.weight)
            out.proj.bias.zero_()
            out.query.weight.copy_(layer.V.weight)
        return out

    feedback = ex.check_seed_to_additive(weights_only)
    assert not feedback.passed and "AND proj.bias" in str(feedback)

    def mutating(layer):
        with torch.no_grad():
            layer.W1.weight.add_(layer.W2.weight)
        return ex.reference_seed_to_additive(layer)

    mutated = ex.check_seed_to_additive(mutating)
    assert not mutated.passed and "weights were modified" in str(mutated)


def test_additive_pool_feedback_catches_a_missing_mask():
    def unmasked(h, mask, proj, query):
        w = torch.softmax(query(torch.tanh(proj(h))).squeeze(-1), dim=-1)
        return (w.unsqueeze(-1) * h).sum(dim=1), w

    feedback = ex.check_additive_pool(unmasked)
    assert not feedback.passed and "padding gets a non-zero weight" in str(feedback)
