"""Exercises of notebook 05 (additive attention pooling): checkers with feedback, and solutions.

Each ``check_*`` runs the learner's function and the reference on the same scores, states and
weights, compares what they compute and returns a :class:`~course_utils.feedback.Feedback`. Where
the result is wrong, the checker computes the usual mistakes on the same inputs and names the one
the learner made. ``reference_*`` are the solutions. Every checker is wrapped in
:func:`~course_utils.feedback.checker`, so it leaves the learner's random generators as they were.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..attention_pooling import AdditiveAttentionPooling, SeedAttentionLayer
from ..feedback import Feedback, checker, matches, matching_mistake, ran
from ..masks import lengths_to_mask
from ..masks import masked_softmax as _masked_softmax

__all__ = [
    "check_additive_pool",
    "check_masked_softmax",
    "check_seed_to_additive",
    "reference_additive_pool",
    "reference_masked_softmax",
    "reference_seed_to_additive",
]

_AFTER_SOFTMAX = (
    "masking after the softmax zeroes the padding, but the rows no longer sum to 1 over the real "
    "steps; fill the padded scores with float('-inf') before the softmax"
)


# --------------------------------------------------------------------------------------------------
# Exercise 5.1: a softmax that gives padding exactly zero weight.


def reference_masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fill the padded steps' scores with -inf, then softmax over time."""
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def _softmax_case() -> tuple[torch.Tensor, torch.Tensor]:
    scores = torch.randn(4, 6, generator=torch.Generator().manual_seed(1)) * 3
    mask = lengths_to_mask(torch.tensor([6, 4, 1, 3]), 6)
    return scores, mask


def _softmax_mistakes(scores: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """The weights the usual mistakes give, each keyed by the hint that names it."""
    minus_inf = scores.masked_fill(~mask, float("-inf"))
    return {
        _AFTER_SOFTMAX: torch.softmax(scores, dim=-1) * mask,
        "the padded steps still take part in the softmax: a mask must act on the scores, with "
        "float('-inf') on padding": torch.softmax(scores, dim=-1),
        "a score of 0 is not 'no weight' (e^0 = 1): fill the padded scores with float('-inf'), "
        "not 0": torch.softmax(scores.masked_fill(~mask, 0.0), dim=-1),
        "dim=0 is the batch axis: take the softmax over the time axis, dim=-1": torch.softmax(
            minus_inf, dim=0
        ),
    }


@checker
def check_masked_softmax(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Feedback:
    """``fn(scores (B, T), mask (B, T) bool, True = real)`` -> weights ``(B, T)``."""
    fb = Feedback("Exercise 5.1 - masked softmax")
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
    want = _masked_softmax(scores, mask)
    if matches(got, want, atol=1e-6):
        fb.ok("the weights match the reference: 0 on padding, rows summing to 1 over real steps")
        return fb
    named = matching_mistake(got, _softmax_mistakes(scores, mask))  # the hint of every check below
    if not torch.isfinite(got.detach()).all():
        fb.fail(
            "the weights contain NaN or inf", "mask with -inf in the scores, not in the weights"
        )
        return fb
    pad = float(got.detach()[~mask].abs().max())
    fb.check(
        pad == 0.0,
        "padded steps get exactly 0",
        failure=f"padded steps get weights up to {pad:.3g}",
        hint=named or "set the padded scores to float('-inf') before the softmax",
    )
    sums = got.detach().sum(dim=-1)
    fb.check(
        matches(sums, torch.ones_like(sums)),
        "each row sums to 1 over the real steps",
        failure=f"rows sum to {[round(v, 3) for v in sums.tolist()]}",
        hint=named or _AFTER_SOFTMAX,
    )
    fb.check_close(
        got,
        want,
        "the weights",
        atol=1e-6,
        hint=named or "softmax over dim=-1 of scores.masked_fill(~mask, float('-inf'))",
    )
    return fb


# --------------------------------------------------------------------------------------------------
# Exercise 5.2: the seed's layer as one projection (W = W1 + W2) and a bias-free scoring vector.


def reference_seed_to_additive(layer: SeedAttentionLayer) -> AdditiveAttentionPooling:
    """``W1(x) + W2(x) = (W1 + W2) x + (b1 + b2)``; V's bias shifts every score equally: drop it."""
    out = AdditiveAttentionPooling(layer.hidden_size, layer.W1.out_features)
    with torch.no_grad():
        out.proj.weight.copy_(layer.W1.weight + layer.W2.weight)
        out.proj.bias.copy_(layer.W1.bias + layer.W2.bias)
        out.query.weight.copy_(layer.V.weight)
    return out


def _weights_with(layer: SeedAttentionLayer, h: torch.Tensor, weight, bias) -> torch.Tensor:
    scores = torch.tanh(h @ weight.T + bias) @ layer.V.weight.T  # (B, T, 1)
    return torch.softmax(scores.squeeze(-1), dim=-1)


@checker
def check_seed_to_additive(
    fn: Callable[[SeedAttentionLayer], AdditiveAttentionPooling],
) -> Feedback:
    """``fn(seed_layer)`` must return an equivalent, smaller :class:`AdditiveAttentionPooling`."""
    fb = Feedback("Exercise 5.2 - the seed's layer as additive attention pooling")
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
    seed_layer.load_state_dict(before)  # judge the rest on the original weights
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
    l1, l2 = seed_layer.W1, seed_layer.W2
    with torch.no_grad():
        mistakes = {
            "you copied W1 only: W2 reads the same x, so W = W1 + W2 (and b = b1 + b2)": (
                _weights_with(seed_layer, h, l1.weight, l1.bias)
            ),
            "the weights are summed but not the biases: proj.weight = W1.weight + W2.weight AND "
            "proj.bias = W1.bias + W2.bias": _weights_with(
                seed_layer, h, l1.weight + l2.weight, torch.zeros_like(l1.bias)
            ),
            "the biases are summed but not the weights: proj.weight = W1.weight + W2.weight": (
                _weights_with(seed_layer, h, l1.weight, l1.bias + l2.bias)
            ),
        }
    if not fb.check_close(
        got_w,
        want,
        "the weights",
        atol=1e-5,
        hint="proj.weight = W1.weight + W2.weight AND proj.bias = W1.bias + W2.bias; "
        "query.weight = V.weight (V's bias does not change a softmax)",
    ):
        fb.name_mistake(got_w, mistakes)
    return fb


# --------------------------------------------------------------------------------------------------
# Exercise 5.3: additive attention pooling from its equation.


def reference_additive_pool(
    h: torch.Tensor, mask: torch.Tensor, proj: nn.Linear, query: nn.Linear
) -> tuple[torch.Tensor, torch.Tensor]:
    """``s_t = v^T tanh(W h_t + b)``; masked softmax over t; ``c = sum_t a_t h_t``."""
    scores = query(torch.tanh(proj(h))).squeeze(-1)  # (B, T)
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)  # (B, T)
    context = (weights.unsqueeze(-1) * h).sum(dim=1)  # (B, H)
    return context, weights


@checker
def check_additive_pool(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Feedback:
    """``fn(h, mask, proj, query)`` -> ``(context (B, H), weights (B, T))`` as the course module."""
    fb = Feedback("Exercise 5.3 - additive attention pooling")
    torch.manual_seed(4)
    layer = AdditiveAttentionPooling(hidden_size=6, attention_size=5)
    h = torch.randn(3, 7, 6, generator=torch.Generator().manual_seed(5))
    mask = lengths_to_mask(torch.tensor([7, 5, 2]), 7)
    pair = fb.check_pair(fb.call(fn, h, mask, layer.proj, layer.query), "context", "weights")
    if pair is None:
        return fb
    context, weights = pair
    with torch.no_grad():
        want_context, want_weights = layer(h, mask)
        raw = layer.query(torch.tanh(layer.proj(h))).squeeze(-1)  # (B, T)
        no_tanh = layer.query(layer.proj(h)).squeeze(-1)
    if not fb.check_shape(
        weights, (3, 7), "weights", hint="squeeze the score's last axis: (B, T, 1) -> (B, T)"
    ):
        return fb
    fb.check(
        float(weights.detach()[~mask].abs().max()) == 0.0,
        "padding gets weight 0",
        failure="padding gets a non-zero weight",
        hint="mask the scores before the softmax: scores.masked_fill(~mask, float('-inf'))",
    )
    sums = weights.detach().sum(dim=-1)
    fb.check(
        matches(sums, torch.ones_like(sums)),
        "each row of weights sums to 1 over the real steps",
        failure=f"the rows of weights sum to {[round(v, 3) for v in sums.tolist()]}",
        hint=_AFTER_SOFTMAX,
    )
    mistakes = {
        "the scores skip the tanh: score = query(tanh(proj(h))), the tanh between the two "
        "layers": _masked_softmax(no_tanh, mask),
        "the softmax runs over the batch axis (dim=0); softmax over time, dim=-1": torch.softmax(
            raw.masked_fill(~mask, float("-inf")), dim=0
        ),
    }
    if not fb.check_close(
        weights,
        want_weights,
        "weights",
        atol=1e-5,
        hint="score = query(tanh(proj(h))): tanh between the two layers, softmax over time",
    ):
        fb.name_mistake(weights, mistakes)
    if not fb.check_shape(
        context, (3, 6), "context", hint="sum the weighted states over time (dim=1)"
    ):
        return fb
    mean_context = (h * mask.unsqueeze(-1)).sum(dim=1) / mask.sum(dim=1, keepdim=True)
    if not fb.check_close(
        context,
        want_context,
        "context",
        atol=1e-5,
        hint="context = (weights.unsqueeze(-1) * h).sum(dim=1)",
    ):
        fb.name_mistake(
            context,
            {
                "the context is the weighted sum of the states, not their mean: "
                "(weights.unsqueeze(-1) * h).sum(dim=1)": mean_context,
                "the context is the weighted sum of the states, not their mean over all steps: "
                "(weights.unsqueeze(-1) * h).sum(dim=1)": h.mean(dim=1),
            },
        )
    return fb
