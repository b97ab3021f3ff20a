"""Additive attention pooling over LSTM outputs: the seed's layer as written, and a corrected one.

Seed 001 (Example 2) pools the per-step outputs of an LSTM with a Keras layer that computes

    score = tanh(W1(x) + W2(x));  weights = softmax(V(score), axis=1);  context = sum_t weights_t x_t

:class:`SeedAttentionLayer` ports it line by line. ``W1(x) + W2(x)`` is ``(W1 + W2) x + (b1 + b2)``: one
linear layer written twice, with twice the parameters and nothing gained. V's bias shifts every score
equally, and softmax ignores shifts, so it is dead weight too. Nor can the layer skip padding.

:class:`AdditiveAttentionPooling` is the standard form (Bahdanau et al. 2015; Yang et al. 2016):

.. math:: s_t = v^\\top \\tanh(W h_t + b), \\quad a = \\operatorname{softmax}_t(s), \\quad
          c = \\sum_t a_t h_t

where ``v`` is a learned scoring vector (Yang et al.'s "context vector" ``u_w``: one fixed question,
"which kind of step matters?", asked of every step) and padded steps get a score of ``-inf``, hence a
weight of exactly 0. Both layers **return their weights**.

:class:`PooledLSTM` puts an ``nn.LSTM`` (any depth) under a pooling (last step, mean, seed, additive)
and a linear head: the models of notebooks 04 and 05. ``"seed_masked"`` is the seed's layer given the
padding mask: the ablation that separates its parameterisation from its missing mask.
:func:`padded_adding_problem` is the adding problem with variable lengths, where the two relevant
steps of every example are known (``target="mean"`` gives the control task where every step matters
equally); :func:`attention_mass` measures how much of the weight lands on the relevant steps,
:func:`deviation_share` how much of the weight x state-deviation does, and :func:`r_squared` whether a
context carries the answer at all (a share alone cannot tell: it follows the marker input).

Shapes: ``B`` batch, ``T`` steps (padded length), ``H`` hidden size, ``U`` attention size.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Pooling = Literal["last", "mean", "seed", "seed_masked", "additive"]
POOLINGS: tuple[str, ...] = ("last", "mean", "seed", "seed_masked", "additive")


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """``(B,)`` lengths -> ``(B, max_len)`` bool mask, True on the first ``lengths[b]`` steps.

    The mask comes from the lengths, not from the values. Keras' ``Masking(mask_value=0.0)`` is a
    different rule: it masks every step whose features all equal ``mask_value``, so it also hides a
    real step that happens to be all zeros (notebook 03). A lengths mask never does.

    Example:
        >>> lengths_to_mask(torch.tensor([2, 3]), 4)
        tensor([[ True,  True, False, False],
                [ True,  True,  True, False]])
    """
    lengths = torch.as_tensor(lengths)
    if lengths.ndim != 1:
        raise ValueError(f"lengths must be 1-D (batch,), got shape {tuple(lengths.shape)}")
    if len(lengths) and (int(lengths.min()) < 1 or int(lengths.max()) > max_len):
        raise ValueError(
            f"lengths must lie in [1, {max_len}], got {int(lengths.min())}..{int(lengths.max())}"
        )
    steps = torch.arange(max_len, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax over the time axis (last) of ``scores (B, T)`` with masked steps at exactly 0.

    Masked steps get a score of ``-inf`` before the softmax, so the real steps' weights still sum
    to 1. A row with no real step has no meaningful softmax and raises ``ValueError``.
    """
    if mask is None:
        return torch.softmax(scores, dim=-1)
    if mask.shape != scores.shape:
        raise ValueError(
            f"mask must have the scores' shape (batch, seq_len) = {tuple(scores.shape)}, "
            f"got {tuple(mask.shape)}"
        )
    mask = mask.bool()
    if not bool(mask.any(dim=-1).all()):
        raise ValueError(
            "every sequence needs at least one real (unmasked) step; check the lengths"
        )
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def _check_states(h: torch.Tensor, hidden_size: int) -> None:
    if h.ndim != 3 or h.shape[-1] != hidden_size:
        raise ValueError(
            f"expected LSTM outputs of shape (batch, seq_len, hidden_size) = (*, *, {hidden_size}), "
            f"got {tuple(h.shape)}; pass nn.LSTM's full output (Keras: return_sequences=True)"
        )


class SeedAttentionLayer(nn.Module):
    """Seed 001's Keras ``AttentionLayer``, ported as written (including its redundancies).

    Args:
        hidden_size: size of each step's input ``x`` (the LSTM's hidden size; Keras infers it).
        units: width of ``W1`` and ``W2`` (the Keras ``units`` argument).

    Inputs: ``x`` of shape ``(B, T, H)``; optional ``mask (B, T)``, True on real steps. The seed's
    layer has no mask (its ``call`` takes none), so by default padded steps are scored and weighted
    like real ones; passing a mask is the course's ablation (same parameters, padding at weight 0).

    Outputs: ``(context, weights)``: ``context (B, H)`` and ``weights (B, T)``, which sum to 1 over
    ``T``. (The Keras layer returns only the context; we also return the weights to look at them.)
    """

    def __init__(self, hidden_size: int, units: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.W1 = nn.Linear(hidden_size, units)
        self.W2 = nn.Linear(hidden_size, units)
        self.V = nn.Linear(units, 1)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """``V(tanh(W1(x) + W2(x)))`` squeezed to ``(B, T)``: one score per step."""
        _check_states(x, self.hidden_size)
        return self.V(torch.tanh(self.W1(x) + self.W2(x))).squeeze(-1)  # (B, T)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # Keras: softmax(V(score), axis=1) on (B, T, 1) is a softmax over time, as it should be.
        weights = masked_softmax(self.scores(x), mask)  # (B, T); mask=None: the seed's layer
        context = (weights.unsqueeze(-1) * x).sum(dim=1)  # (B, T, 1) * (B, T, H) -> (B, H)
        return context, weights


class AdditiveAttentionPooling(nn.Module):
    """Additive attention pooling with a learned scoring vector and a padding mask.

    ``s_t = v^T tanh(W h_t + b)``, ``a = softmax_t(s)`` over real steps only, ``c = sum_t a_t h_t``.

    Args:
        hidden_size: size ``H`` of each step's state ``h_t``.
        attention_size: width ``U`` of the scoring layer (default: ``hidden_size``).

    Inputs: ``h (B, T, H)`` and optional ``mask (B, T)``, True on real steps (see
    :func:`lengths_to_mask`).

    Outputs: ``(context, weights)``: ``context (B, H)``; ``weights (B, T)``, exactly 0 on padding and
    summing to 1 over the real steps.

    Note: ``v`` (the attribute ``query``) is a learned scoring vector, the fixed query of Yang et
    al.'s pooling. In Bahdanau's form ``v^T tanh(W h_t + U q)`` the query ``q`` is a second input
    (the decoder's state, notebook 06) and ``v`` still only scores; a learned, fixed ``q`` makes
    ``U q`` a constant, i.e. the bias ``b`` here. ``v`` has no bias because softmax ignores a shift.
    """

    def __init__(self, hidden_size: int, attention_size: int | None = None) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        attention_size = attention_size or hidden_size
        self.proj = nn.Linear(hidden_size, attention_size)  # W, b
        self.query = nn.Linear(attention_size, 1, bias=False)  # v, the learned scoring vector

    def scores(self, h: torch.Tensor) -> torch.Tensor:
        """Unnormalised scores ``s_t`` of shape ``(B, T)`` (no mask applied)."""
        _check_states(h, self.hidden_size)
        return self.query(torch.tanh(self.proj(h))).squeeze(-1)  # (B, T)

    def forward(
        self, h: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        weights = masked_softmax(self.scores(h), mask)  # (B, T)
        context = torch.einsum("bt,bth->bh", weights, h)  # (B, H)
        return context, weights


class PooledLSTM(nn.Module):
    """``nn.LSTM`` -> pooling over time -> ``nn.Linear``: the models of notebooks 04 and 05.

    Args:
        input_size: features per step ``F``.
        hidden_size: LSTM width ``H`` (every layer; ``nn.LSTM`` has one width for all layers).
        num_layers: stacked LSTM layers (Keras: several ``LSTM`` layers, all but the last with
            ``return_sequences=True``).
        pooling: how the ``T`` outputs become one vector. ``"last"``: the output at each sequence's
            last real step (Keras ``return_sequences=False``); ``"mean"``: the average over real
            steps; ``"seed"``: :class:`SeedAttentionLayer` (ignores padding, as the seed does);
            ``"seed_masked"``: the seed's layer with the padding mask (an ablation);
            ``"additive"``: :class:`AdditiveAttentionPooling` with the padding mask.
        output_size: outputs of the head; with 1 the model returns shape ``(B,)``.
        attention_size: width of the attention scoring layer (default ``hidden_size``).

    Inputs: ``x (B, T, F)`` and optional ``lengths (B,)`` (padding at the end). A unidirectional LSTM
    reads left to right, so padding at the end never changes the states of the real steps; only the
    pooling has to skip it.

    Outputs: ``forward`` returns predictions ``(B,)`` or ``(B, output_size)``;
    :meth:`forward_with_weights` also returns the attention weights ``(B, T)`` (``None`` for "last").
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        pooling: Pooling = "last",
        output_size: int = 1,
        attention_size: int | None = None,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        self.output_size = output_size
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True)
        if pooling in ("seed", "seed_masked"):
            self.attention: nn.Module | None = SeedAttentionLayer(
                hidden_size, attention_size or hidden_size
            )
        elif pooling == "additive":
            self.attention = AdditiveAttentionPooling(hidden_size, attention_size)
        else:
            self.attention = None
        self.head = nn.Linear(hidden_size, output_size)

    def forward_with_weights(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Predictions and the pooling's weights over time ``(B, T)`` (None for "last")."""
        if x.ndim != 3 or x.shape[-1] != self.lstm.input_size:
            raise ValueError(
                f"expected x of shape (batch, seq_len, input_size) = (*, *, {self.lstm.input_size}), "
                f"got {tuple(x.shape)}"
            )
        h, _ = self.lstm(x)  # (B, T, H)
        mask = None if lengths is None else lengths_to_mask(lengths.to(x.device), x.shape[1])
        weights: torch.Tensor | None = None
        if self.pooling == "last":
            if lengths is None:
                pooled = h[:, -1]  # (B, H)
            else:
                pooled = h[torch.arange(len(h), device=h.device), lengths.to(h.device) - 1]
        elif self.pooling == "mean":
            weights = masked_softmax(torch.zeros(h.shape[:2], device=h.device), mask)
            pooled = torch.einsum("bt,bth->bh", weights, h)
        elif self.pooling == "seed":
            pooled, weights = self.attention(h)  # the seed's layer: no mask
        elif self.pooling == "seed_masked":
            pooled, weights = self.attention(h, mask)  # the seed's parameters, with the mask
        else:
            pooled, weights = self.attention(h, mask)
        out = self.head(pooled)  # (B, output_size)
        return (out.squeeze(-1) if self.output_size == 1 else out), weights

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_with_weights(x, lengths)[0]


def padded_adding_problem(
    n: int,
    max_len: int,
    *,
    min_len: int | None = None,
    seed: int = 0,
    target: Literal["marked_sum", "mean"] = "marked_sum",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The adding problem with variable lengths and zero padding at the end.

    Example ``i`` has ``lengths[i]`` real steps (uniform in ``[min_len, max_len]``, default
    ``max_len // 2``); each step holds a value in U(0, 1) and a 0/1 marker. One marked step lies in
    the first half of the real steps, one in the second; the target is the sum of their values. The
    marked steps are the only relevant ones, so we know where attention *should* go.

    ``target="mean"`` keeps the same inputs (markers included) but makes the target the mean of all
    real values: a task where every step matters equally, the control for "attention improves".

    Returns:
        ``x (n, max_len, 2)``, ``lengths (n,)``, ``y (n,)``, ``positions (n, 2)`` (the marked steps).
    """
    min_len = min_len if min_len is not None else max(2, max_len // 2)
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not 2 <= min_len <= max_len:
        raise ValueError(f"need 2 <= min_len <= max_len, got min_len={min_len}, max_len={max_len}")
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=g)
    values = torch.rand(n, max_len, generator=g)
    half = lengths // 2
    # A uniform draw in [0, half) and in [half, length), per example.
    first = (torch.rand(n, generator=g) * half).long()
    second = half + (torch.rand(n, generator=g) * (lengths - half)).long()
    positions = torch.stack([first, second], dim=1)  # (n, 2)
    rows = torch.arange(n)
    markers = torch.zeros(n, max_len)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    mask = lengths_to_mask(lengths, max_len)  # (n, T)
    x = torch.stack([values, markers], dim=-1) * mask.unsqueeze(-1)  # (n, T, 2), zeros on padding
    if target == "marked_sum":
        y = values[rows, first] + values[rows, second]
    elif target == "mean":
        y = x[..., 0].sum(dim=1) / lengths.float()  # padding is 0, so this averages the real steps
    else:
        raise ValueError(f"target must be 'marked_sum' or 'mean', got {target!r}")
    return x, lengths, y, positions


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
    weights too: a model pooled by a plain average (``PooledLSTM(pooling="mean")``) whose LSTM writes
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


context_share = deviation_share  # the earlier name, kept for old code; the measure is the same


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
