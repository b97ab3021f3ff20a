"""Notebook 07 exercise checkers: fail on the starter, fail on trivial stubs, pass on the reference."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course_utils.exercises.mha import (
    check_causal_mask,
    check_masked_head_weights,
    check_padding_mask,
    reference_causal_mask,
    reference_masked_head_weights,
    reference_padding_mask,
)
from tests.notebook_tools import assert_checker_contract, find_notebook

NOTEBOOK = find_notebook("07")

EXERCISES = [
    ("starter-causal-mask", "build_causal_mask", check_causal_mask, reference_causal_mask),
    ("starter-padding-mask", "build_padding_mask", check_padding_mask, reference_padding_mask),
    (
        "starter-masked-head-weights",
        "masked_head_weights",
        check_masked_head_weights,
        reference_masked_head_weights,
    ),
]
STUBS = {
    "build_causal_mask": lambda seq_len: torch.zeros(seq_len, seq_len, dtype=torch.bool),
    "build_padding_mask": lambda lengths, seq_len: torch.zeros(
        len(lengths), seq_len, dtype=torch.bool
    ),
    "masked_head_weights": lambda mha, x, mask: torch.full(
        (x.shape[0], mha.num_heads, x.shape[1], x.shape[1]), 1 / x.shape[1]
    ),
}


def _calls_the_module(mha: nn.MultiheadAttention, x: torch.Tensor, mask) -> torch.Tensor:
    return mha(x, x, x, key_padding_mask=mask, need_weights=True, average_attn_weights=False)[1]


WRONG = {
    "build_causal_mask": {
        "inverted": (lambda t: torch.ones(t, t, dtype=torch.bool).tril(), "inverted"),
        "diagonal blocked": (lambda t: torch.ones(t, t, dtype=torch.bool).triu(), "diagonal"),
        "float 0/1": (lambda t: torch.ones(t, t).triu(1), "float attn_mask is *added*"),
        "fixed size": (lambda t: reference_causal_mask(5), "not a fixed size"),
    },
    "build_padding_mask": {
        "inverted": (lambda lengths, t: ~reference_padding_mask(lengths, t), "inverted"),
        "longest length": (
            lambda lengths, t: reference_padding_mask(lengths, int(lengths.max())),
            "use seq_len columns",
        ),
        "off by one": (
            lambda lengths, t: torch.arange(t).unsqueeze(0) > lengths.unsqueeze(1),
            "t >= lengths[b]",
        ),
        "float mask": (lambda lengths, t: reference_padding_mask(lengths, t).float(), "boolean"),
    },
    "masked_head_weights": {
        "calls the module": (_calls_the_module, "by hand"),
        "mask ignored": (None, "the mask was ignored"),
        "mask after the softmax": (None, "mask the scores before the softmax"),
        "mask inverted": (None, "inverted"),
        "mask inverted, -1e9": (None, "inverted"),
        "mask on the queries": (None, "hides keys, the last axis"),
        "mask on the queries, -1e9": (None, "hides keys, the last axis"),
        "mask one axis short": (None, "one axis short"),
        "mask one axis short, -1e9": (None, "one axis short"),
        "softmax over the queries": (None, "softmax ran over the queries"),
        "softmax over the queries, -1e9": (None, "softmax ran over the queries"),
        "transposed": (None, "the result is transposed"),
        "no scaling": (None, "divide the scores by sqrt(head_dim)"),
        "sqrt(embed_dim)": (None, "not sqrt(embed_dim)"),
        "no biases": (None, "add in_proj_bias"),
        "heads averaged": (None, "heads were averaged"),
    },
}


MASK_VARIANTS = {
    "mask ignored": {"mask": "none"},
    "mask after the softmax": {"mask": "after"},
    "mask inverted": {"mask": "inverted"},
    "mask inverted, -1e9": {"mask": "inverted", "fill": -1e9},
    "mask on the queries": {"mask": "queries"},
    "mask on the queries, -1e9": {"mask": "queries", "fill": -1e9},
    "mask one axis short": {"mask": "short"},
    "mask one axis short, -1e9": {"mask": "short", "fill": -1e9},
    "softmax over the queries": {"softmax_dim": -2},
    "softmax over the queries, -1e9": {"softmax_dim": -2, "fill": -1e9},
    "transposed": {"transpose": True},
    "no scaling": {"scale": "none"},
    "sqrt(embed_dim)": {"scale": "embed"},
    "no biases": {"bias": False},
    "heads averaged": {"average": True},
}


@pytest.mark.parametrize(("tag", "name", "checker", "reference"), EXERCISES)
def test_checker_contract(tag, name, checker, reference):
    wrong = dict(WRONG[name])
    if name == "masked_head_weights":
        wrong = {
            k: (_variant(**MASK_VARIANTS[k]) if k in MASK_VARIANTS else answer, named)
            for k, (answer, named) in wrong.items()
        }
    assert_checker_contract(
        NOTEBOOK, tag, name, checker, reference, [STUBS[name]], wrong_answers=wrong
    )
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


def _variant(
    *,
    bias: bool = True,
    scale: str = "head",
    average: bool = False,
    mask: str = "keys",
    fill: float = float("-inf"),
    softmax_dim: int = -1,
    transpose: bool = False,
):
    def masked_head_weights(mha: nn.MultiheadAttention, x: torch.Tensor, pad) -> torch.Tensor:
        b, t, e = x.shape
        h = mha.num_heads
        d = e // h
        q, k, _ = nn.functional.linear(
            x, mha.in_proj_weight, mha.in_proj_bias if bias else None
        ).chunk(3, dim=-1)
        q = q.view(b, t, h, d).transpose(1, 2)  # (B, H, T, d)
        k = k.view(b, t, h, d).transpose(1, 2)  # (B, H, T, d)
        factor = {"head": 1 / math.sqrt(d), "embed": 1 / math.sqrt(e), "none": 1.0}[scale]
        scores = q @ k.transpose(-2, -1) * factor  # (B, H, T, T)
        keys, queries = pad[:, None, None, :], pad[:, None, :, None]
        if mask == "keys":
            scores = scores.masked_fill(keys, fill)
        elif mask == "inverted":
            scores = scores.masked_fill(~keys, fill)
        elif mask == "queries":
            scores = scores.masked_fill(queries, fill)
        elif mask == "short":
            scores = scores.masked_fill(pad[:, None, :], fill)  # (B, 1, T): batch on the heads
        w = scores.softmax(dim=softmax_dim)
        if mask == "after":
            w = w.masked_fill(keys, 0.0)
        if transpose:
            w = w.transpose(-2, -1)
        return w.mean(dim=1) if average else w

    return masked_head_weights


@pytest.mark.parametrize(
    ("variant", "hint"),
    [
        (_variant(scale="none"), "divide the scores by sqrt(head_dim)"),
        (_variant(scale="embed"), "not sqrt(embed_dim)"),
        (_variant(bias=False), "add in_proj_bias"),
        (_variant(average=True), "heads were averaged"),
        (_variant(mask="none"), "the mask was ignored"),
        (_variant(mask="after"), "before the softmax"),
        (_variant(mask="inverted"), "inverted"),
        (_variant(mask="queries", fill=-1e9), "hides keys"),
        (_variant(mask="short"), "one axis short"),
        (_variant(mask="short", fill=-1e9), "one axis short"),
        (_variant(softmax_dim=-2), "softmax ran over the queries"),
        (_variant(softmax_dim=-2, fill=-1e9), "softmax ran over the queries"),
        (_variant(transpose=True), "the result is transposed"),
        (_variant(transpose=True, fill=-1e9), "the result is transposed"),
    ],
)
def test_masked_head_weights_hints_name_the_mistake(variant, hint):
    feedback = check_masked_head_weights(variant)
    assert not feedback.passed
    assert hint in str(feedback)


@pytest.mark.parametrize("fill", [float("-inf"), -1e9, torch.finfo(torch.float32).min])
def test_masked_head_weights_accepts_every_fill_that_blocks(fill):
    feedback = check_masked_head_weights(_variant(fill=fill))
    assert feedback.passed, str(feedback)


@pytest.mark.parametrize(
    "blocked_value",
    [float("-inf"), -1e9, torch.finfo(torch.float32).min, -1e4],
    ids=["-inf", "-1e9", "finfo.min", "-1e4"],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_causal_mask_accepts_every_float_mask_that_blocks(blocked_value, dtype):
    """Judged by behaviour: any float mask that gives the reference's weights passes."""

    def float_mask(t):
        return torch.zeros(t, t, dtype=dtype).masked_fill(reference_causal_mask(t), blocked_value)

    feedback = check_causal_mask(float_mask)
    assert feedback.passed, str(feedback)
    assert "gives the weights and outputs of a correct causal mask" in str(feedback)


def test_causal_mask_names_a_float_mask_that_only_nudges():
    feedback = check_causal_mask(
        lambda t: torch.zeros(t, t).masked_fill(reference_causal_mask(t), -5.0)
    )
    assert not feedback.passed and "only nudges" in str(feedback)
    as_int = check_causal_mask(lambda t: reference_causal_mask(t).int())
    assert not as_int.passed and "use booleans" in str(as_int)
    inverted_float = check_causal_mask(
        lambda t: torch.zeros(t, t).masked_fill(~reference_causal_mask(t), -1e9)
    )
    assert not inverted_float.passed and "inverted" in str(inverted_float)


def test_masked_head_weights_without_the_key_bias_still_passes():
    """q . b_k is the same for every key of a query, so the softmax cancels it (the notebook says so)."""

    def no_key_bias(mha, x, pad):
        b, t, e = x.shape
        h, d = mha.num_heads, e // mha.num_heads
        bias = mha.in_proj_bias.clone()
        bias[e : 2 * e] = 0  # drop b_k only
        q, k, _ = nn.functional.linear(x, mha.in_proj_weight, bias).chunk(3, dim=-1)
        q = q.view(b, t, h, d).transpose(1, 2)  # (B, H, T, d)
        k = k.view(b, t, h, d).transpose(1, 2)  # (B, H, T, d)
        scores = (q @ k.transpose(-2, -1) / math.sqrt(d)).masked_fill(pad[:, None, None, :], -1e9)
        return scores.softmax(dim=-1)

    assert check_masked_head_weights(no_key_bias).passed


def test_masked_head_weights_never_lets_the_batch_fit_the_heads_axis():
    """A (B, 1, T) mask broadcasts the batch onto the heads without error when B == H: the checked
    case has B != H, so it raises, and the feedback names it rather than "fill with -inf"."""
    feedback = check_masked_head_weights(_variant(mask="short"))
    text = str(feedback)
    assert not feedback.passed
    assert "raised RuntimeError" in text and "one axis short" in text
    assert "fill the scores of the padded keys" not in text


def _additive(fill: float):
    """An additive float mask: 0 on real keys, ``fill`` on padded ones, added to the scores."""

    def masked_head_weights(mha, x, pad):
        b, t, e = x.shape
        h, d = mha.num_heads, e // mha.num_heads
        q, k, _ = nn.functional.linear(x, mha.in_proj_weight, mha.in_proj_bias).chunk(3, dim=-1)
        q = q.view(b, t, h, d).transpose(1, 2)  # (B, H, T, d)
        k = k.view(b, t, h, d).transpose(1, 2)  # (B, H, T, d)
        additive = torch.zeros(b, t).masked_fill(pad, fill)[:, None, None, :]  # (B, 1, 1, T)
        return (q @ k.transpose(-2, -1) / math.sqrt(d) + additive).softmax(dim=-1)

    return masked_head_weights


def _per_head_loop(mha, x, pad):
    """One head at a time from slices of W_q, W_k and their biases, then stacked on axis 1."""
    e = x.shape[-1]
    d = e // mha.num_heads
    w, bias = mha.in_proj_weight, mha.in_proj_bias
    heads = []
    for i in range(mha.num_heads):
        rows_q, rows_k = slice(i * d, (i + 1) * d), slice(e + i * d, e + (i + 1) * d)
        q = x @ w[rows_q].T + bias[rows_q]  # (B, T, d)
        k = x @ w[rows_k].T + bias[rows_k]  # (B, T, d)
        scores = q @ k.transpose(1, 2) / math.sqrt(d)  # (B, T, T)
        heads.append(scores.masked_fill(pad[:, None, :], float("-inf")).softmax(dim=-1))
    return torch.stack(heads, dim=1)  # (B, H, T, T)


def _in_float64(mha, x, pad):
    """The reference computed in float64 (the result is float64 too)."""
    b, t, e = x.shape
    h, d = mha.num_heads, e // mha.num_heads
    w, bias = mha.in_proj_weight.double(), mha.in_proj_bias.double()
    q, k, _ = nn.functional.linear(x.double(), w, bias).chunk(3, dim=-1)
    q = q.view(b, t, h, d).transpose(1, 2)  # (B, H, T, d)
    k = k.view(b, t, h, d).transpose(1, 2)  # (B, H, T, d)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)
    return scores.masked_fill(pad[:, None, None, :], float("-inf")).softmax(dim=-1)


def _einsum_where(mha, x, pad):
    """Scores by einsum, the mask applied with torch.where."""
    b, t, e = x.shape
    h, d = mha.num_heads, e // mha.num_heads
    q, k, _ = nn.functional.linear(x, mha.in_proj_weight, mha.in_proj_bias).chunk(3, dim=-1)
    scores = torch.einsum("bihd,bjhd->bhij", q.view(b, t, h, d), k.view(b, t, h, d)) / d**0.5
    scores = torch.where(pad[:, None, None, :], float("-inf"), scores)
    return scores.softmax(dim=-1)


def _zero_then_renormalise(mha, x, pad):
    """Softmax first, then the padded keys set to 0 and each row divided by its new sum."""
    b, t, e = x.shape
    h, d = mha.num_heads, e // mha.num_heads
    q, k, _ = nn.functional.linear(x, mha.in_proj_weight, mha.in_proj_bias).chunk(3, dim=-1)
    q = q.view(b, t, h, d).transpose(1, 2)  # (B, H, T, d)
    k = k.view(b, t, h, d).transpose(1, 2)  # (B, H, T, d)
    weights = (q @ k.transpose(-2, -1) / math.sqrt(d)).softmax(dim=-1)
    weights = weights.masked_fill(pad[:, None, None, :], 0.0)
    return weights / weights.sum(dim=-1, keepdim=True)


@pytest.mark.parametrize(
    "answer",
    [
        _additive(-1e9),
        _additive(float("-inf")),
        _per_head_loop,
        _in_float64,
        _einsum_where,
        _zero_then_renormalise,
    ],
    ids=[
        "additive -1e9",
        "additive -inf",
        "per-head loop",
        "float64",
        "einsum + where",
        "zero + renormalise",
    ],
)
def test_masked_head_weights_accepts_every_correct_way(answer):
    feedback = check_masked_head_weights(answer)
    assert feedback.passed, str(feedback)
