"""Notebook 05's exercise checkers: fail on the starter, on trivial stubs and on the usual mistakes
(each with a hint that names it), pass on the solution, leave the RNG alone."""

from __future__ import annotations

import pytest
import torch

from course_utils.attention_pooling import AdditiveAttentionPooling
from course_utils.exercises import attention_pooling as ex
from tests.notebook_tools import assert_checker_contract, find_notebook

NOTEBOOK = find_notebook("05")
NEG_INF = float("-inf")

# 5.1 ------------------------------------------------------------------------------------------
SOFTMAX_MISTAKES = {
    "mask after the softmax": (
        lambda s, m: torch.softmax(s, dim=-1) * m,
        "no longer sum to 1",
    ),
    "no mask": (lambda s, m: torch.softmax(s, dim=-1), "float('-inf')"),
    "padding filled with 0": (
        lambda s, m: torch.softmax(s.masked_fill(~m, 0.0), dim=-1),
        "score of 0 is not",
    ),
    "softmax over the batch": (
        lambda s, m: torch.softmax(s.masked_fill(~m, NEG_INF), dim=0),
        "batch axis",
    ),
}


# 5.2 ------------------------------------------------------------------------------------------
def _pooling_from(layer, weight, bias):
    out = AdditiveAttentionPooling(layer.hidden_size, layer.W1.out_features)
    with torch.no_grad():
        out.proj.weight.copy_(weight)
        out.proj.bias.copy_(bias)
        out.query.weight.copy_(layer.V.weight)
    return out


def biases_forgotten(layer):
    return _pooling_from(layer, layer.W1.weight + layer.W2.weight, torch.zeros_like(layer.W1.bias))


def w1_only(layer):
    return _pooling_from(layer, layer.W1.weight, layer.W1.bias)


def mutating(layer):
    with torch.no_grad():
        layer.W1.weight.add_(layer.W2.weight)
        layer.W1.bias.add_(layer.W2.bias)
    return _pooling_from(layer, layer.W1.weight, layer.W1.bias)


def wrong_size(layer):
    return AdditiveAttentionPooling(layer.hidden_size)  # attention_size = hidden_size, not units


MERGE_MISTAKES = {
    "biases not summed": (biases_forgotten, "AND proj.bias"),
    "W1 only": (w1_only, "W1 only"),
    "seed layer modified": (mutating, "weights were modified"),
    "attention size": (wrong_size, "units"),
}


# 5.3 ------------------------------------------------------------------------------------------
def no_mask(h, mask, proj, query):
    w = torch.softmax(query(torch.tanh(proj(h))).squeeze(-1), dim=-1)
    return (w.unsqueeze(-1) * h).sum(dim=1), w


def mask_after_softmax(h, mask, proj, query):
    w = torch.softmax(query(torch.tanh(proj(h))).squeeze(-1), dim=-1) * mask
    return (w.unsqueeze(-1) * h).sum(dim=1), w


def no_tanh(h, mask, proj, query):
    w = torch.softmax(query(proj(h)).squeeze(-1).masked_fill(~mask, NEG_INF), dim=-1)
    return (w.unsqueeze(-1) * h).sum(dim=1), w


def mean_context(h, mask, proj, query):
    _, w = ex.reference_additive_pool(h, mask, proj, query)
    return (h * mask.unsqueeze(-1)).sum(dim=1) / mask.sum(dim=1, keepdim=True), w


POOL_MISTAKES = {
    "no mask": (no_mask, "mask the scores before the softmax"),
    "mask after the softmax": (mask_after_softmax, "no longer sum to 1"),
    "no tanh": (no_tanh, "skip the tanh"),
    "mean instead of weighted sum": (mean_context, "weighted sum"),
}

CASES = [
    (
        "starter-5.1",
        "masked_softmax",
        ex.check_masked_softmax,
        [lambda scores, mask: torch.zeros_like(scores)],
        ex.reference_masked_softmax,
        SOFTMAX_MISTAKES,
    ),
    (
        "starter-5.2",
        "seed_to_additive",
        ex.check_seed_to_additive,
        [lambda layer: AdditiveAttentionPooling(layer.hidden_size, layer.W1.out_features)],
        ex.reference_seed_to_additive,
        MERGE_MISTAKES,
    ),
    (
        "starter-5.3",
        "additive_pool",
        ex.check_additive_pool,
        [lambda h, mask, proj, query: (h.mean(dim=1), torch.full(h.shape[:2], 1 / h.shape[1]))],
        ex.reference_additive_pool,
        POOL_MISTAKES,
    ),
]


@pytest.mark.parametrize(("tag", "name", "check", "stubs", "solution", "wrong"), CASES)
def test_checker_contract(tag, name, check, stubs, solution, wrong):
    assert_checker_contract(NOTEBOOK, tag, name, check, solution, stubs, wrong_answers=wrong)
