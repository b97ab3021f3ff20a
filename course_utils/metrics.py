"""Measurements of trained models and of their attention weights: one number per question.

Losses that skip padding (:func:`masked_mse`), where attention lands (:func:`future_attention`,
:func:`attention_mass`, :func:`marked_share`, :func:`focus_ratio`, :func:`alignment_accuracy`),
what the weighted states carry (:func:`deviation_share`) and whether a readout decodes the answer
(:func:`r_squared`). They take tensors, not models, and return results on the device of their
inputs.
"""

from __future__ import annotations

import torch

from .masks import causal_mask

__all__ = [
    "masked_mse",
    "future_attention",
    "attention_mass",
    "deviation_share",
    "r_squared",
    "marked_share",
    "focus_ratio",
    "alignment_accuracy",
]


def masked_mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the targets that are not NaN (NaN marks padding).

    ``outputs`` may carry a trailing feature axis of size 1: ``(B, T, 1)`` against ``(B, T)``.
    """
    if outputs.dim() == targets.dim() + 1 and outputs.shape[-1] == 1:
        outputs = outputs.squeeze(-1)
    if outputs.shape != targets.shape:
        raise ValueError(
            f"outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)} differ"
        )
    real = ~torch.isnan(targets)
    return ((outputs[real] - targets[real]) ** 2).mean()


def future_attention(weights: torch.Tensor) -> torch.Tensor:
    """Share of each query's attention that lands on later keys (``j > i``), averaged over queries.

    Args:
        weights: ``(..., L, L)`` self-attention weights (rows sum to 1), e.g. ``(N, H, L, L)``.

    Returns:
        ``(...)``: 0 for a causal model; for the last query it is always 0, so a fully "leaky"
        model scores below 1.
    """
    if weights.dim() < 2 or weights.shape[-1] != weights.shape[-2]:
        raise ValueError(
            f"expected square self-attention weights (..., L, L), got {tuple(weights.shape)}"
        )
    future = causal_mask(weights.shape[-1], weights.device)  # (L, L) True above the diagonal
    return (weights * future).sum(dim=-1).mean(dim=-1)


def attention_mass(weights: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Share of each example's attention that lands on its relevant steps.

    Args:
        weights: ``(B, T)`` attention weights (rows sum to 1).
        positions: ``(B, K)`` indices of the relevant steps of each example.

    Returns:
        ``(B,)``: ``sum_k weights[b, positions[b, k]]``. Uniform attention over ``L`` real steps
        gives ``K / L``; a perfect focus gives 1.
    """
    if weights.ndim != 2 or positions.ndim != 2 or len(weights) != len(positions):
        raise ValueError(
            f"expected weights (batch, seq_len) and positions (batch, k) with the same batch, got "
            f"{tuple(weights.shape)} and {tuple(positions.shape)}"
        )
    return weights.gather(1, positions.to(weights.device, torch.long)).sum(dim=1)


def deviation_share(
    weights: torch.Tensor,
    states: torch.Tensor,
    positions: torch.Tensor,
    real: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weight x state-deviation share: how much of ``sum_t a_t |h_t - h_bar|`` the relevant steps hold.

    The context is ``c = sum_t a_t h_t``. Step ``t`` contributes ``a_t * |h_t - h_bar|``, where
    ``h_bar`` is the average state over the real steps of the batch. The share is the relevant
    steps' contributions over all steps'. Unlike :func:`attention_mass` it can be high for *uniform*
    weights too: a model pooled by a plain average (``attention_pooling.PooledLSTM(pooling="mean")``) whose LSTM writes
    its information only into the states at the relevant steps gets a high share.

    What it does **not** measure: whether the context carries the answer. ``|h_t - h_bar|`` is
    driven by whatever makes a step's state stand out, e.g. a marker input; a model whose value
    channel is wrecked keeps a high share while predicting nothing. Pair it with a decodability
    measure (:func:`r_squared` of a readout from the context) before calling a context a summary.

    Args:
        weights: ``(B, T)`` pooling weights (rows sum to 1; uniform for mean pooling).
        states: ``(B, T, H)`` the pooled states (the LSTM's outputs).
        positions: ``(B, K)`` indices of the relevant steps.
        real: optional ``(B, T)`` bool mask of real steps, for ``h_bar`` (default: every step).

    Returns:
        ``(B,)`` shares in ``[0, 1]``.
    """
    if states.ndim != 3 or weights.shape != states.shape[:2]:
        raise ValueError(
            f"expected weights (batch, seq_len) and states (batch, seq_len, hidden_size) with the "
            f"same batch and seq_len, got {tuple(weights.shape)} and {tuple(states.shape)}"
        )
    real = torch.ones_like(weights, dtype=torch.bool) if real is None else real.bool()
    h_bar = states[real].mean(dim=0)  # (H,)
    contributions = weights * (states - h_bar).norm(dim=-1)  # (B, T)
    relevant = contributions.gather(1, positions.to(weights.device, torch.long)).sum(dim=1)
    return relevant / contributions.sum(dim=1).clamp_min(1e-12)


def r_squared(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """``1 - SSE / SST`` on one split: the share of the targets' variance a readout explains.

    1 is a perfect readout, 0 is no better than predicting the split's mean, and it goes negative
    for a readout worse than that. Used as "the context carries the answer" (decodability).
    """
    predictions, targets = predictions.reshape(-1).double(), targets.reshape(-1).double()
    if predictions.shape != targets.shape or targets.numel() < 2:
        raise ValueError(
            f"need one prediction per target (at least 2), got {predictions.numel()} and "
            f"{targets.numel()}"
        )
    sst = ((targets - targets.mean()) ** 2).sum()
    if sst == 0:
        raise ValueError("the targets are constant: R^2 is undefined")
    return 1.0 - (((predictions - targets) ** 2).sum() / sst).item()


def marked_share(weights: torch.Tensor, marks: torch.Tensor) -> torch.Tensor:
    """Per example and head, the weight the first query puts on the mark and the step after it.

    ``weights (N, heads, L, S)`` per-head attention (``inspector.records[...].weights``), ``marks (N,)``.
    Returns ``(N, heads)`` on the device of ``weights``.
    """
    if weights.dim() != 4:
        raise ValueError(f"expected (N, heads, L, S) weights, got shape {tuple(weights.shape)}")
    if marks.shape != (weights.shape[0],):
        raise ValueError(
            f"expected one mark position per example, marks of shape ({weights.shape[0]},), "
            f"got {tuple(marks.shape)}"
        )
    marks = marks.to(weights.device)
    rows = torch.arange(weights.shape[0], device=weights.device)
    first = weights[:, :, 0]  # (N, heads, S): what query 0 takes from each key
    return first[rows, :, marks] + first[rows, :, marks + 1]  # (N, heads)


def focus_ratio(weights: torch.Tensor, marks: torch.Tensor) -> float:
    """The best head's mean :func:`marked_share`, over what uniform weights give (``2 / S``)."""
    share = marked_share(weights, marks).mean(dim=0)  # (heads,)
    return float(share.max()) / (2 / weights.shape[-1])


def alignment_accuracy(attention: torch.Tensor, expected: torch.Tensor) -> float:
    """Share of decoder steps whose most-attended source step is the expected one.

    Args:
        attention: ``(B, T, S)`` or ``(T, S)`` weights.
        expected: ``(T,)`` or ``(B, T)`` source positions, e.g. :func:`course_utils.seq2seq.reverse_positions`.
    """
    if attention.ndim == 2:
        attention = attention.unsqueeze(0)  # (T, S) -> (1, T, S)
    if attention.ndim != 3:
        raise ValueError(
            f"expected attention of shape (batch, target_len, source_len) (3-D), got shape "
            f"{tuple(attention.shape)}"
        )
    expected = expected.to(attention.device).expand(attention.shape[:2])  # (B, T)
    return (attention.argmax(-1) == expected).float().mean().item()
