"""Exercises of notebook 09 (LSTM pooling over BERT layers): checkers and reference solutions.

1. :func:`check_final_states`: pool a BiLSTM's output with the final state of **both** directions.
2. :func:`check_scalar_mix`: the learned scalar mix of layers, ``gamma * sum_k softmax(w)_k x_k``.
3. :func:`check_ablate_layer`: the drop in a score when one layer's [CLS] is replaced by a baseline.

Each checker runs the learner's function on cases with a known answer and returns a
:class:`~course_utils.feedback.Feedback` that names the mistake (the seed's ``out[:, -1, :]``, a
missing softmax, an input changed in place, a flipped sign) and how to fix it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..feedback import Feedback, checker, matches, ran
from ..seeding import seeded

__all__ = [
    "check_ablate_layer",
    "check_final_states",
    "check_scalar_mix",
    "reference_ablate_layer",
    "reference_final_states",
    "reference_scalar_mix",
]


# --- reference solutions ------------------------------------------------------------------------


def reference_final_states(out: torch.Tensor, lstm_hidden: int) -> torch.Tensor:
    """``cat(out[:, -1, :D], out[:, 0, D:])``: forward after the last step, backward after the first."""
    forward_last = out[:, -1, :lstm_hidden]  # (N, D): has read steps 0..K-1
    backward_last = out[:, 0, lstm_hidden:]  # (N, D): has read steps K-1..0
    return torch.cat([forward_last, backward_last], dim=-1)  # (N, 2D)


def reference_scalar_mix(
    cls_per_layer: torch.Tensor, logits: torch.Tensor, gamma: float
) -> torch.Tensor:
    """``gamma * sum_k softmax(logits)_k * cls_per_layer[:, k]``, shape ``(N, H)``."""
    weights = torch.softmax(logits, dim=0)  # (K,), sums to 1
    return gamma * (weights.view(1, -1, 1) * cls_per_layer).sum(dim=1)  # (N, H)


def reference_ablate_layer(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    k: int,
    baseline: torch.Tensor,
) -> torch.Tensor:
    """``score_fn(x) - score_fn(x with layer k := baseline[k])`` per example, ``(N,)``; ``x`` untouched."""
    ablated = x.clone()  # never change the caller's features
    ablated[:, k] = baseline[k]  # (N, H) <- (H,)
    return score_fn(x) - score_fn(ablated)


# --- checkers -----------------------------------------------------------------------------------


def _bilstm_case(seed: int = 0, n: int = 5, k: int = 6, h: int = 8, d: int = 4):
    with seeded(seed) as g:  # the caller's random state is left as it was
        lstm = nn.LSTM(h, d, batch_first=True, bidirectional=True)
        x = torch.randn(n, k, h, generator=g)
    with torch.no_grad():
        out, (h_n, _) = lstm(x)  # out (N, K, 2D), h_n (2, N, D)
    return out, h_n, d


@checker
def check_final_states(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> Feedback:
    """Check ``fn(out, lstm_hidden) -> (N, 2 * lstm_hidden)`` against ``nn.LSTM``'s own ``h_n``."""
    fb = Feedback("Exercise 9.1 - pool a BiLSTM with both final states")
    out, h_n, d = _bilstm_case()
    expected = torch.cat([h_n[-2], h_n[-1]], dim=-1)  # (N, 2D), PyTorch's final states
    result = fb.call(fn, out.clone(), d)
    if not fb.check_result(
        result,
        tuple(expected.shape),
        "the pooled vector",
        hint="concatenate two (N, D) halves along the last dimension",
    ):
        return fb
    if matches(result, out[:, -1, :]) and not matches(result, expected):
        fb.fail(
            "this is the seed's out[:, -1, :]: its backward half has read only the last step",
            "the backward direction ends at position 0: take out[:, 0, D:] for that half",
        )
        return fb
    fb.check_close(
        result[:, :d],
        expected[:, :d],
        "the forward half",
        atol=1e-6,
        hint="the forward direction ends at the last position: out[:, -1, :D]",
    )
    fb.check_close(
        result[:, d:],
        expected[:, d:],
        "the backward half",
        atol=1e-6,
        hint="the backward direction ends at position 0: out[:, 0, D:]",
    )
    if fb.passed:
        fb.ok("equal to torch.cat([h_n[-2], h_n[-1]], dim=-1) from nn.LSTM itself")
    return fb


@checker
def check_scalar_mix(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> Feedback:
    """Check ``fn(cls_per_layer, logits, gamma) -> (N, H)`` on uneven weights and a gamma != 1."""
    fb = Feedback("Exercise 9.2 - a learned scalar mix of layers")
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 6, 5, generator=g)  # (N, K, H)
    logits = torch.tensor([2.0, -1.0, 0.5, 0.0, 1.5, -0.5])
    gamma = 1.7
    expected = reference_scalar_mix(x, logits, gamma)
    result = fb.call(fn, x.clone(), logits.clone(), gamma)
    if not fb.check_result(
        result,
        tuple(expected.shape),
        "the mixed vector",
        hint="sum over the layer axis (dim=1) so one vector per example remains",
    ):
        return fb
    mistakes = {
        "this is the plain mean of the layers: weight each layer by softmax(logits)[k] "
        "instead": x.mean(dim=1) * gamma,
        "this is weights without softmax: turn the logits into weights with "
        "torch.softmax(logits, 0)": gamma * (logits.view(1, -1, 1) * x).sum(dim=1),
        "this is a mix without gamma: multiply the mix by gamma (it rescales the whole "
        "vector)": reference_scalar_mix(x, logits, 1.0),
    }
    if not fb.check_close(
        result,
        expected,
        "the mixed vectors",
        atol=1e-5,
        hint="gamma * sum_k softmax(logits)[k] * cls_per_layer[:, k]",
    ):
        fb.name_mistake(result, mistakes)
    return fb


@checker
def check_ablate_layer(
    fn: Callable[
        [Callable[[torch.Tensor], torch.Tensor], torch.Tensor, int, torch.Tensor], torch.Tensor
    ],
) -> Feedback:
    """Check ``fn(score_fn, x, k, baseline) -> (N,)`` on a score with a known answer per layer."""
    fb = Feedback("Exercise 9.3 - ablate one layer's [CLS]")
    g = torch.Generator().manual_seed(2)
    x = torch.randn(5, 4, 3, generator=g)  # (N, K, H)
    baseline = torch.randn(4, 3, generator=g)  # (K, H)
    weight = torch.tensor([0.0, 1.0, -2.0, 3.0]).view(1, 4, 1)  # layer 0 never read

    def score_fn(feats: torch.Tensor) -> torch.Tensor:
        return (weight * feats).sum(dim=(1, 2)) + 0.1 * feats[:, 3].pow(2).sum(dim=1)  # (N,)

    for k in (3, 0):
        original = x.clone()
        expected = reference_ablate_layer(score_fn, x, k, baseline)
        result = fb.call(fn, score_fn, x, k, baseline)
        if not ran(result) or not fb.check_tensor(result, f"the result for layer {k}"):
            return fb
        if not torch.equal(x, original):
            fb.fail(
                "your function changed x in place: later layers would be ablated on top",
                "work on a copy: ablated = x.clone(); ablated[:, k] = baseline[k]",
            )
            x.copy_(original)
            return fb
        if not fb.check_shape(
            result,
            tuple(expected.shape),
            f"the result for layer {k}",
            hint="return one score change per example: shape (N,)",
        ):
            return fb
        mistakes = {
            "the sign is flipped: importance = score(x) - score(ablated), positive when removing "
            "the layer lowers the score": -expected,
            "you set the layer to zeros, not to its baseline: use baseline[k] (an average "
            "sentence's layer), not zeros: zero is no sentence": reference_ablate_layer(
                score_fn, x, k, torch.zeros_like(baseline)
            ),
        }
        what = "layer 0 (never read): a change of 0" if k == 0 else f"the score drops for layer {k}"
        if not fb.check_close(
            result,
            expected,
            what,
            atol=1e-5,
            hint="replace x[:, k] by baseline[k] (a copy of x), score both, subtract",
        ):
            fb.name_mistake(result, mistakes)
            return fb
    return fb
