"""Exercises of notebook 04 (additive attention pooling): checkers with feedback, and solutions.

Each ``check_*`` runs the learner's function on cases with known answers and returns a
:class:`~course_utils.feedback.Feedback`; ``reference_*`` are the solutions.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..attention_pooling import AdditiveAttentionPooling, SeedAttentionLayer, lengths_to_mask
from ..attention_pooling import masked_softmax as _masked_softmax
from ..feedback import Feedback, ran

# --------------------------------------------------------------------------------------------------
# Exercise 4.1: a softmax that gives padding exactly zero weight.


def reference_masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fill the padded steps' scores with -inf, then softmax over time."""
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def _softmax_case() -> tuple[torch.Tensor, torch.Tensor]:
    scores = torch.randn(4, 6, generator=torch.Generator().manual_seed(1)) * 3
    mask = lengths_to_mask(torch.tensor([6, 4, 1, 3]), 6)
    return scores, mask


def check_masked_softmax(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Feedback:
    """``fn(scores (B, T), mask (B, T) bool, True = real)`` -> weights ``(B, T)``."""
    fb = Feedback("Exercise 4.1 - masked softmax")
    scores, mask = _softmax_case()
    got = fb.call(fn, scores.clone(), mask.clone())
    if not ran(got) or not fb.check_tensor(got, "the weights"):
        return fb
    if not fb.check_shape(
        got,
        tuple(scores.shape),
        "the weights",
        hint="one weight per step: the softmax keeps the (batch, seq_len) shape",
    ):
        return fb
    pad = float(got.detach()[~mask].abs().max())
    fb.check(
        pad == 0.0,
        "padded steps get exactly 0",
        failure=f"padded steps get weights up to {pad:.3g}",
        hint="set the padded scores to float('-inf') before the softmax (masked_fill(~mask, ...))",
    )
    sums = got.detach().sum(dim=-1)
    fb.check(
        torch.allclose(sums, torch.ones_like(sums), atol=1e-5),
        "each row sums to 1 over the real steps",
        failure=f"rows sum to {[round(v, 3) for v in sums.tolist()]}",
        hint="take the softmax over the time axis (dim=-1) after masking; multiplying by the mask "
        "afterwards leaves rows that no longer sum to 1",
    )
    if not torch.isfinite(got.detach()).all():
        fb.fail(
            "the weights contain NaN or inf", "mask with -inf in the scores, not in the weights"
        )
        return fb
    fb.check_close(
        got,
        _masked_softmax(scores, mask),
        "the weights",
        atol=1e-6,
        hint="softmax over dim=-1 of scores.masked_fill(~mask, float('-inf'))",
    )
    return fb


# --------------------------------------------------------------------------------------------------
# Exercise 4.2: the seed's layer as one projection (W = W1 + W2) and a bias-free query.


def reference_seed_to_additive(layer: SeedAttentionLayer) -> AdditiveAttentionPooling:
    """``W1(x) + W2(x) = (W1 + W2) x + (b1 + b2)``; V's bias shifts every score equally: drop it."""
    out = AdditiveAttentionPooling(layer.hidden_size, layer.W1.out_features)
    with torch.no_grad():
        out.proj.weight.copy_(layer.W1.weight + layer.W2.weight)
        out.proj.bias.copy_(layer.W1.bias + layer.W2.bias)
        out.query.weight.copy_(layer.V.weight)
    return out


def check_seed_to_additive(
    fn: Callable[[SeedAttentionLayer], AdditiveAttentionPooling],
) -> Feedback:
    """``fn(seed_layer)`` must return an equivalent, smaller :class:`AdditiveAttentionPooling`."""
    fb = Feedback("Exercise 4.2 - the seed's layer as additive attention pooling")
    torch.manual_seed(7)
    seed_layer = SeedAttentionLayer(hidden_size=8, units=5)
    before = {k: v.clone() for k, v in seed_layer.state_dict().items()}
    got = fb.call(fn, seed_layer)
    if not ran(got):
        return fb
    if not fb.check(
        isinstance(got, AdditiveAttentionPooling),
        "returns an AdditiveAttentionPooling",
        failure=f"returns {type(got).__name__}, not an AdditiveAttentionPooling",
        hint="build AdditiveAttentionPooling(layer.hidden_size, layer.W1.out_features)",
    ):
        return fb
    unchanged = all(torch.equal(before[k], v) for k, v in seed_layer.state_dict().items())
    fb.check(
        unchanged,
        "the seed layer is left unchanged",
        failure="the seed layer's weights were modified",
        hint="copy into the new layer's parameters (inside torch.no_grad()), not into W1 or W2",
    )
    n_got, n_seed = (
        sum(p.numel() for p in got.parameters()),
        sum(p.numel() for p in seed_layer.parameters()),
    )
    fb.check(
        n_got == 8 * 5 + 5 + 5,
        f"{8 * 5 + 5 + 5} parameters instead of the seed's {n_seed}",
        failure=f"{n_got} parameters, expected {8 * 5 + 5 + 5}",
        hint="attention_size must equal the seed's units (W1.out_features)",
    )
    h = torch.randn(3, 6, 8, generator=torch.Generator().manual_seed(2))
    try:
        with torch.no_grad():
            want, got_w = seed_layer(h)[1], got(h)[1]
    except Exception as exc:  # e.g. a wrong hidden size
        fb.fail(
            f"the new layer cannot pool h of shape (3, 6, 8): {exc}",
            "hidden_size must be the seed layer's hidden_size",
        )
        return fb
    fb.check_close(
        got_w,
        want,
        "the weights",
        atol=1e-5,
        hint="proj.weight = W1.weight + W2.weight AND proj.bias = W1.bias + W2.bias; "
        "query.weight = V.weight (V's bias does not change a softmax)",
    )
    return fb


# --------------------------------------------------------------------------------------------------
# Exercise 4.3: additive attention pooling from its equation.


def reference_additive_pool(
    h: torch.Tensor, mask: torch.Tensor, proj: nn.Linear, query: nn.Linear
) -> tuple[torch.Tensor, torch.Tensor]:
    """``s_t = v^T tanh(W h_t + b)``; masked softmax over t; ``c = sum_t a_t h_t``."""
    scores = query(torch.tanh(proj(h))).squeeze(-1)  # (B, T)
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)  # (B, T)
    context = (weights.unsqueeze(-1) * h).sum(dim=1)  # (B, H)
    return context, weights


def check_additive_pool(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Feedback:
    """``fn(h, mask, proj, query)`` -> ``(context (B, H), weights (B, T))`` as the course module."""
    fb = Feedback("Exercise 4.3 - additive attention pooling")
    torch.manual_seed(4)
    layer = AdditiveAttentionPooling(hidden_size=6, attention_size=5)
    h = torch.randn(3, 7, 6, generator=torch.Generator().manual_seed(5))
    mask = lengths_to_mask(torch.tensor([7, 5, 2]), 7)
    got = fb.call(fn, h, mask, layer.proj, layer.query)
    if not ran(got):
        return fb
    if not fb.check(
        isinstance(got, tuple) and len(got) == 2,
        "returns (context, weights)",
        failure=f"returns {type(got).__name__}, expected a tuple (context, weights)",
        hint="end with `return context, weights`",
    ):
        return fb
    context, weights = got
    if not (fb.check_tensor(context, "context") and fb.check_tensor(weights, "weights")):
        return fb
    with torch.no_grad():
        want_context, want_weights = layer(h, mask)
    if not fb.check_shape(
        weights, (3, 7), "weights", hint="squeeze the score's last axis: (B, T, 1) -> (B, T)"
    ):
        return fb
    fb.check(
        float(weights.detach()[~mask].abs().max()) == 0.0,
        "padding gets weight 0",
        failure="padding gets a non-zero weight",
        hint="mask the scores before the softmax",
    )
    fb.check_close(
        weights,
        want_weights,
        "weights",
        atol=1e-5,
        hint="score = query(tanh(proj(h))): tanh between the two layers, softmax over time",
    )
    if not fb.check_shape(
        context, (3, 6), "context", hint="sum the weighted states over time (dim=1)"
    ):
        return fb
    fb.check_close(
        context,
        want_context,
        "context",
        atol=1e-5,
        hint="context = (weights.unsqueeze(-1) * h).sum(dim=1)",
    )
    return fb
