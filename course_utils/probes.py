"""Linear probes: how much of a feature can be read off a layer's hidden states by a linear map.

"The deepest layer holds an abstract summary" is a statement we can measure. Fit a ridge regression
from a layer's ``h_t`` to a feature (the current input, a running sum of the sequence so far, ...) on
some sequences and score it on **other** sequences: the held-out R^2 says how much of the feature's
variance the layer makes linearly available. 1 means the feature is there, read off exactly; 0 means
a probe does no better than predicting the mean. Comparing layers (and a trained stack with an
untrained one) shows where in the stack a feature appears.

Shapes: ``L`` layers, ``B`` sequences, ``T`` time steps, ``H`` hidden units.
"""

from __future__ import annotations

import torch


def probe_r2(
    features: torch.Tensor, target: torch.Tensor, *, n_fit: int, ridge: float = 1e-3
) -> float:
    """Held-out R^2 of a ridge regression (with intercept) from ``features`` to ``target``.

    Rows ``[:n_fit]`` fit the probe, rows ``[n_fit:]`` score it, so a probe cannot score well by
    memorising its own rows. Computed in float64, closed form (no training loop, no randomness).

    Args:
        features: ``(N, D)`` inputs of the probe, e.g. hidden states.
        target: ``(N,)`` the feature to read off.
        n_fit: rows used to fit; the rest (at least 2) are scored.
        ridge: L2 penalty on the weights (not the intercept); small, only for numerical stability.

    Returns:
        ``1 - MSE / Var(target)`` on the scored rows (can be negative for a useless probe).
    """
    if features.ndim != 2 or target.ndim != 1 or len(features) != len(target):
        raise ValueError(
            f"expected features (N, D) and target (N,), got {tuple(features.shape)} and "
            f"{tuple(target.shape)}"
        )
    if not 1 <= n_fit <= len(target) - 2:
        raise ValueError(f"n_fit must leave at least 2 rows to score, got {n_fit} of {len(target)}")
    if ridge < 0:
        raise ValueError(f"ridge must be non-negative, got {ridge}")
    x = torch.cat([features.detach(), torch.ones(len(features), 1)], dim=1).double()
    y = target.detach().double()
    penalty = ridge * torch.eye(x.shape[1], dtype=x.dtype)
    penalty[-1, -1] = 0.0  # no penalty on the intercept
    fit_x, fit_y = x[:n_fit], y[:n_fit]
    weights = torch.linalg.solve(fit_x.T @ fit_x + penalty, fit_x.T @ fit_y)
    scored = y[n_fit:]
    variance = scored.var(unbiased=False)
    if variance == 0:
        raise ValueError("the target is constant on the scored rows, so R^2 is undefined")
    return float(1.0 - ((x[n_fit:] @ weights - scored) ** 2).mean() / variance)


def layer_probes(
    h: torch.Tensor, target: torch.Tensor, *, from_step: int = 0, ridge: float = 1e-3
) -> list[float]:
    """Held-out R^2 of a linear probe for ``target`` on every layer's hidden states.

    The probe of each layer is fitted on the first half of the sequences (all their steps from
    ``from_step`` on) and scored on the second half: new sequences, not new steps of seen ones.

    Args:
        h: ``(L, B, T, H)`` hidden states per layer, e.g. ``trace_lstm(lstm, x).h[:, 0]``.
        target: ``(B, T)`` the feature at every step (e.g. ``x[..., 0]`` or a running sum).
        from_step: skip the first steps (where a running statistic is still noisy).

    Returns:
        One R^2 per layer, bottom layer first.
    """
    n_layers, batch, steps, hidden = _probe_shapes(h, target, from_step)
    kept = steps - from_step
    y = target[:, from_step:].reshape(-1)
    n_fit = (batch // 2) * kept
    return [
        probe_r2(h[layer, :, from_step:].reshape(-1, hidden), y, n_fit=n_fit, ridge=ridge)
        for layer in range(n_layers)
    ]


def layer_probe_errors(
    h: torch.Tensor, target: torch.Tensor, *, from_step: int = 0, ridge: float = 1e-3
) -> torch.Tensor:
    """Per held-out sequence, the squared error of each layer's linear probe, in units of variance.

    The same probes as :func:`layer_probes` (fitted on the first half of the sequences, every step
    from ``from_step`` on), scored on the second half; each scored sequence's squared error is
    averaged over its steps and divided by the target's variance on the scored rows. So the mean
    over sequences is ``1 - R^2`` of :func:`layer_probes`, and two layers' errors are paired by
    sequence: ``checks.paired_bootstrap(errors[0], errors[-1])`` is the top layer's R^2 gain over
    layer 0 with an interval whose items are independent sequences (not the correlated steps of one).

    Returns:
        ``(L, B - B // 2)``: one row per layer (bottom first), one column per scored sequence.
    """
    n_layers, batch, steps, hidden = _probe_shapes(h, target, from_step)
    if ridge < 0:
        raise ValueError(f"ridge must be non-negative, got {ridge}")
    kept, n_seq_fit = steps - from_step, batch // 2
    y = target[:, from_step:].reshape(-1).detach().double()
    n_fit = n_seq_fit * kept
    variance = y[n_fit:].var(unbiased=False)
    if variance == 0:
        raise ValueError("the target is constant on the scored rows, so R^2 is undefined")
    rows = []
    for layer in range(n_layers):
        x = h[layer, :, from_step:].reshape(-1, hidden).detach().double()
        x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
        penalty = ridge * torch.eye(x.shape[1], dtype=x.dtype)
        penalty[-1, -1] = 0.0  # no penalty on the intercept
        weights = torch.linalg.solve(x[:n_fit].T @ x[:n_fit] + penalty, x[:n_fit].T @ y[:n_fit])
        squared = (x[n_fit:] @ weights - y[n_fit:]) ** 2  # (scored sequences * kept,)
        rows.append(squared.view(batch - n_seq_fit, kept).mean(dim=1) / variance)
    return torch.stack(rows)


def _probe_shapes(h: torch.Tensor, target: torch.Tensor, from_step: int) -> tuple[int, ...]:
    """``(L, B, T, H)`` of per-layer states that a per-step target can be probed from, or an error."""
    if h.ndim != 4 or target.shape != h.shape[1:3]:
        raise ValueError(
            f"expected h (L, B, T, H) and target (B, T), got {tuple(h.shape)} and "
            f"{tuple(target.shape)}"
        )
    n_layers, batch, steps, hidden = h.shape
    if batch < 4 or not 0 <= from_step < steps:
        raise ValueError(f"need at least 4 sequences and 0 <= from_step < {steps}")
    return n_layers, batch, steps, hidden
