"""Notebook 06 exercise checkers: fail on the starter, fail on trivial stubs, pass on the reference."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course_utils.exercises.mha import (
    check_causal_mask,
    check_head_weights,
    check_padding_mask,
    reference_causal_mask,
    reference_head_weights,
    reference_padding_mask,
)
from tests.notebook_tools import assert_checker_contract, find_notebook

NOTEBOOK = find_notebook("06")

EXERCISES = [
    ("starter-causal-mask", "build_causal_mask", check_causal_mask, reference_causal_mask),
    ("starter-padding-mask", "build_padding_mask", check_padding_mask, reference_padding_mask),
    ("starter-head-weights", "head_weights", check_head_weights, reference_head_weights),
]
STUBS = {
    "build_causal_mask": lambda seq_len: torch.zeros(seq_len, seq_len, dtype=torch.bool),
    "build_padding_mask": lambda lengths, seq_len: torch.zeros(
        len(lengths), seq_len, dtype=torch.bool
    ),
    "head_weights": lambda mha, x: torch.full(
        (x.shape[0], mha.num_heads, x.shape[1], x.shape[1]), 1 / x.shape[1]
    ),
}


@pytest.mark.parametrize(("tag", "name", "checker", "reference"), EXERCISES)
def test_checker_contract(tag, name, checker, reference):
    assert_checker_contract(NOTEBOOK, tag, name, checker, reference, [STUBS[name]])
    assert "[no]" in str(checker(STUBS[name]))  # the stub's failure is itemised, not just flagged


def test_causal_mask_hints_name_the_mistake():
    inverted = check_causal_mask(lambda t: torch.ones(t, t, dtype=torch.bool).tril())
    assert not inverted.passed and "inverted" in str(inverted)
    with_diagonal = check_causal_mask(lambda t: torch.ones(t, t, dtype=torch.bool).triu())
    assert not with_diagonal.passed and "diagonal" in str(with_diagonal)
    as_float = check_causal_mask(lambda t: torch.ones(t, t).triu(1))
    assert not as_float.passed and "float attn_mask is *added*" in str(as_float)


def test_padding_mask_hints_name_the_mistake():
    inverted = check_padding_mask(lambda lengths, t: ~reference_padding_mask(lengths, t))
    assert not inverted.passed and "inverted" in str(inverted)
    longest = check_padding_mask(
        lambda lengths, t: reference_padding_mask(lengths, int(lengths.max()))
    )
    assert not longest.passed and "seq_len" in str(longest)


def _variant(*, bias: bool = True, scale: str = "head", average: bool = False):
    def head_weights(mha: nn.MultiheadAttention, x: torch.Tensor) -> torch.Tensor:
        b, t, e = x.shape
        h = mha.num_heads
        d = e // h
        q, k, _ = nn.functional.linear(
            x, mha.in_proj_weight, mha.in_proj_bias if bias else None
        ).chunk(3, dim=-1)
        q = q.view(b, t, h, d).transpose(1, 2)  # (B, H, T, d)
        k = k.view(b, t, h, d).transpose(1, 2)  # (B, H, T, d)
        factor = {"head": 1 / math.sqrt(d), "embed": 1 / math.sqrt(e), "none": 1.0}[scale]
        w = (q @ k.transpose(-2, -1) * factor).softmax(dim=-1)  # (B, H, T, T)
        return w.mean(dim=1) if average else w

    return head_weights


@pytest.mark.parametrize(
    ("variant", "hint"),
    [
        (_variant(scale="none"), "divide the scores by sqrt(head_dim)"),
        (_variant(scale="embed"), "not sqrt(embed_dim)"),
        (_variant(bias=False), "add in_proj_bias"),
        (_variant(average=True), "heads were averaged"),
    ],
)
def test_head_weights_hints_name_the_mistake(variant, hint):
    feedback = check_head_weights(variant)
    assert not feedback.passed
    assert hint in str(feedback)
    assert check_head_weights(_variant()).passed
