"""Exercises of notebook 06 (encoder-decoder with Bahdanau attention): checkers and solutions.

1. :func:`check_additive_scores`: the Bahdanau score ``v^T tanh(W_q q + W_k k_j)`` for every key.
2. :func:`check_masked_attention`: softmax over the real source steps only, then the context.
3. :func:`check_shift_right`: the decoder inputs of teacher forcing, ``[start, y_0 .. y_{T-2}]``.

Each checker runs the learner's function and the reference on the same weights and inputs, compares
what they compute, and returns a :class:`~course_utils.feedback.Feedback` that names the likely
mistake (a missing ``tanh``, ``tanh`` after ``v``, a sum in place of ``v``, padding that still gets
weight, a mask applied after the softmax, the target fed unshifted) and the fix. Every checker is
wrapped in :func:`~course_utils.feedback.checker`, so the learner's random state is left as it was.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..feedback import Feedback, checker, matches, ran
from ..seeding import seeded
from ..seq2seq import BahdanauAttention, shift_right

__all__ = [
    "check_additive_scores",
    "check_masked_attention",
    "check_shift_right",
    "reference_additive_scores",
    "reference_masked_attention",
    "reference_shift_right",
]


# --- reference solutions ------------------------------------------------------------------------


def reference_additive_scores(
    query: torch.Tensor, keys: torch.Tensor, W_q: nn.Linear, W_k: nn.Linear, v: nn.Linear
) -> torch.Tensor:
    """``e_j = v^T tanh(W_q q + W_k k_j)`` for query ``(B, Hq)`` and keys ``(B, S, Hk)``: ``(B, S)``."""
    hidden = torch.tanh(W_q(query).unsqueeze(1) + W_k(keys))  # (B, 1, A) + (B, S, A) -> (B, S, A)
    return v(hidden).squeeze(-1)  # (B, S, 1) -> (B, S)


def reference_masked_attention(
    scores: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax of ``scores (B, S)`` over the steps where ``mask`` is True; context ``(B, H)``."""
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)  # (B, S)
    context = (weights.unsqueeze(-1) * values).sum(dim=1)  # (B, S, 1) * (B, S, H) -> (B, H)
    return context, weights


def reference_shift_right(target: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """``[start, y_0, ..., y_{T-2}]`` for every row of ``target (B, T)``."""
    return torch.cat([start.unsqueeze(1).to(target.dtype), target[:, :-1]], dim=1)  # (B, T)


# --- checkers -----------------------------------------------------------------------------------


def _attention_case(seed: int = 0, b: int = 3, s: int = 5, hq: int = 6, hk: int = 4, a: int = 7):
    with seeded(seed) as g:  # the caller's random state is left as it was
        attention = BahdanauAttention(hq, hk, a)
        query = torch.randn(b, hq, generator=g)
        keys = torch.randn(b, s, hk, generator=g)
    return attention, query, keys


@checker
def check_additive_scores(
    fn: Callable[[torch.Tensor, torch.Tensor, nn.Linear, nn.Linear, nn.Linear], torch.Tensor],
) -> Feedback:
    """Check ``fn(query, keys, W_q, W_k, v) -> scores (B, S)`` against :class:`BahdanauAttention`."""
    fb = Feedback("Exercise 6.1 - the additive (Bahdanau) score")
    attention, query, keys = _attention_case()
    with torch.no_grad():
        expected = attention.score(query, keys)  # (B, S)
        result = fb.call(fn, query.clone(), keys.clone(), attention.W_q, attention.W_k, attention.v)
    b, s = expected.shape
    if not fb.check_result(
        result,
        (b, s),
        "the scores",
        hint="add W_q(query).unsqueeze(1), shape (B, 1, A), to W_k(keys), shape (B, S, A): "
        "the query is broadcast over the S keys",
        known_shapes={
            (b, s, 1): (
                f"the scores have shape {(b, s, 1)}, expected {(b, s)}",
                "v(...) keeps a last axis of size 1: end with .squeeze(-1)",
            )
        },
    ):
        return fb
    with torch.no_grad():
        summed = attention.W_q(query).unsqueeze(1) + attention.W_k(keys)  # (B, S, A)
        mistakes = {
            "the scores are a linear function of q and k: apply torch.tanh before v": (
                attention.v(summed).squeeze(-1)
            ),
            "tanh is applied after v, so every score lies in (-1, 1): tanh goes inside, "
            "v(torch.tanh(W_q(q) + W_k(k)))": torch.tanh(attention.v(summed)).squeeze(-1),
            "the features are summed instead of projected with v: project with v (a learned "
            "vector), do not sum the features: v(torch.tanh(...))": torch.tanh(summed).sum(-1),
        }
    if not fb.check_close(
        result.detach(),
        expected,
        "the scores",
        hint="score_j = v(tanh(W_q(query) + W_k(keys_j))): one W_q for the query, one W_k for keys",
    ):
        fb.name_mistake(result, mistakes)
    return fb


@checker
def check_masked_attention(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
) -> Feedback:
    """Check ``fn(scores, values, mask) -> (context (B, H), weights (B, S))``.

    The case has padded steps (``mask`` False) whose scores are large, so ignoring the mask shows.
    """
    fb = Feedback("Exercise 6.2 - attention over the real steps only")
    with seeded(1) as g:
        scores = torch.randn(3, 6, generator=g)
        values = torch.randn(3, 6, 4, generator=g)
    lengths = torch.tensor([6, 4, 1])
    mask = torch.arange(6).unsqueeze(0) < lengths.unsqueeze(1)  # (B, S), True on real steps
    scores = scores.masked_fill(~mask, 5.0)  # padding that would win if it were not masked
    expected_ctx, expected_w = reference_masked_attention(scores, values, mask)
    pair = fb.check_pair(
        fb.call(fn, scores.clone(), values.clone(), mask.clone()), "context", "weights"
    )
    if pair is None:
        return fb
    context, weights = pair
    if not fb.check_shape(weights, (3, 6), "weights", hint="one weight per source step: (B, S)"):
        return fb
    after = torch.softmax(scores, dim=-1) * mask  # the mask applied after the softmax
    if matches(weights, after, atol=1e-6):
        fb.fail(
            "the mask was applied after the softmax: rows no longer sum to 1",
            "mask before the softmax: scores.masked_fill(~mask, float('-inf')), then softmax",
        )
        return fb
    sums = weights.detach().sum(-1)
    fb.check(
        matches(sums, torch.ones_like(sums)),
        "every row of weights sums to 1",
        hint="softmax over the source steps: dim=-1",
    )
    padded = weights.detach()[~mask]
    fb.check(
        bool((padded == 0).all()),
        "padded steps get weight exactly 0",
        failure=f"padded steps get weight up to {padded.abs().max().item():.3g}",
        hint="set the scores of padded steps to -inf (scores.masked_fill(~mask, float('-inf'))) "
        "before the softmax",
    )
    fb.check(
        matches(weights[2, 0], torch.tensor(1.0)),
        "a sequence with one real step puts weight 1.0 on it",
        hint="with one real step the softmax has one position: its weight must be 1",
    )
    fb.check_close(weights.detach(), expected_w, "weights", hint="masked softmax over dim=-1")
    fb.check_close(
        context.detach(),
        expected_ctx,
        "context",
        hint="context = sum over steps of weights * values (not a plain mean of the values): "
        "(B, S, 1) * (B, S, H), sum dim 1",
    )
    return fb


@checker
def check_shift_right(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Feedback:
    """Check ``fn(target, start) -> decoder_inputs (B, T)`` for teacher forcing."""
    fb = Feedback("Exercise 6.3 - decoder inputs for teacher forcing")
    # every row has its own start (a values model starts from each series' last value), and row 0's
    # start is not 10: a hard-coded <bos> and `start[0]` for every row are both caught, by name
    target = torch.tensor([[3, 1, 4, 1, 5], [9, 2, 6, 5, 3], [2, 7, 1, 8, 2]])
    start = torch.tensor([7, 10, 4])
    expected = shift_right(target, start)
    result = fb.call(fn, target.clone(), start.clone())
    if not ran(result) or not fb.check_tensor(result):
        return fb
    if tuple(result.shape) == tuple(target.shape) and torch.equal(result, target):
        fb.fail(
            "the decoder inputs are the targets themselves",
            "a leak: step t would be fed y_t, the answer it must predict; "
            "feed y_{t-1} (start with the start token)",
        )
        return fb
    if not fb.check_shape(
        result,
        tuple(target.shape),
        "decoder inputs",
        hint="one input per output step: prepend start, then drop the last target",
    ):
        return fb
    fb.check(
        result.dtype == target.dtype,
        "keeps the target's dtype",
        failure=f"dtype is {result.dtype}, expected {target.dtype}",
        hint="ids index an embedding: keep them int64 (start.to(target.dtype))",
    )
    first = result[:, 0]  # (B,)
    if not torch.equal(first, start.to(first.dtype)) and bool((first == first[0]).all()):
        if first[0].item() == start[0].item():
            fb.fail(
                "every row is fed row 0's start",
                "start has one entry per row (B,): use all of it, start.unsqueeze(1), not start[0]",
            )
        else:
            fb.fail(
                f"step 0 is fed the same fixed id ({first[0].item():g}) in every row",
                "use the `start` you are given, not a hard-coded <bos> id: rows can start "
                "differently (here they do)",
            )
        return fb
    fb.check(
        torch.equal(first, start.to(result.dtype)),
        "step 0 is fed the start token",
        hint="the first decoder input is `start`, the <bos> id",
    )
    fb.check(
        torch.equal(result[:, 1:], target[:, :-1].to(result.dtype)),
        "step t is fed y_{t-1}",
        hint="after the start token come target[:, :-1]",
    )
    fb.check(torch.equal(result, expected), "decoder inputs match the reference")
    return fb
