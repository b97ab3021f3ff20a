"""Additive attention pooling over LSTM outputs: the article's layer as written, and a corrected one.

Article 001 (Example 2) pools the per-step outputs of an LSTM with a Keras layer that computes

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
and a linear head: the models of notebooks 04 and 05. ``"seed_masked"`` is the article's layer given the
padding mask: the ablation that separates its parameterisation from its missing mask.
Their task, the adding problem with variable lengths (``padded_adding_problem``), lives in
:mod:`course_utils.tasks`. The masks these layers take are :func:`course_utils.masks.lengths_to_mask` (True on real
steps) and :func:`course_utils.masks.masked_softmax`; what the weights are measured with
(``attention_mass``, ``deviation_share``, ``r_squared``) lives in :mod:`course_utils.metrics`.

Shapes: ``B`` batch, ``T`` steps (padded length), ``H`` hidden size, ``U`` attention size.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from .capture import expose_attention
from .masks import lengths_to_mask, masked_softmax

Pooling = Literal["last", "mean", "seed", "seed_masked", "additive"]
POOLINGS: tuple[str, ...] = ("last", "mean", "seed", "seed_masked", "additive")


def _check_states(h: torch.Tensor, hidden_size: int) -> None:
    if h.ndim != 3 or h.shape[-1] != hidden_size:
        raise ValueError(
            f"expected LSTM outputs of shape (batch, seq_len, hidden_size) = (*, *, {hidden_size}), "
            f"got {tuple(h.shape)}; pass nn.LSTM's full output (Keras: return_sequences=True)"
        )


class SeedAttentionLayer(nn.Module):
    """Article 001's Keras ``AttentionLayer``, ported as written (including its redundancies).

    Args:
        hidden_size: size of each step's input ``x`` (the LSTM's hidden size; Keras infers it).
        units: width of ``W1`` and ``W2`` (the Keras ``units`` argument).

    Inputs: ``x`` of shape ``(B, T, H)``; optional ``mask (B, T)``, True on real steps. The seed's
    layer has no mask (its ``call`` takes none), so by default padded steps are scored and weighted
    like real ones; passing a mask is the course's ablation (same parameters, padding at weight 0).

    Outputs: ``(context, weights)``: ``context (B, H)`` and ``weights (B, T)``, which sum to 1 over
    ``T``. (The Keras layer returns only the context; we also return the weights to look at them.)
    """

    exposes_attention = True  # capture_attention and inspect record its weights

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
        weights = masked_softmax(self.scores(x), mask)  # (B, T); mask=None: the article's layer
        expose_attention(self, weights, mask=mask)  # free unless capture_attention is recording
        context = (weights.unsqueeze(-1) * x).sum(dim=1)  # (B, T, 1) * (B, T, H) -> (B, H)
        return context, weights


class AdditiveAttentionPooling(nn.Module):
    """Additive attention pooling with a learned scoring vector and a padding mask.

    ``s_t = v^T tanh(W h_t + b)``, ``a = softmax_t(s)`` over real steps only, ``c = sum_t a_t h_t``.

    Args:
        hidden_size: size ``H`` of each step's state ``h_t``.
        attention_size: width ``U`` of the scoring layer (default: ``hidden_size``).

    Inputs: ``h (B, T, H)`` and optional ``mask (B, T)``, True on real steps (see
    :func:`course_utils.masks.lengths_to_mask`).

    Outputs: ``(context, weights)``: ``context (B, H)``; ``weights (B, T)``, exactly 0 on padding and
    summing to 1 over the real steps.

    Note: ``v`` (the attribute ``query``) is a learned scoring vector, the fixed query of Yang et
    al.'s pooling. In Bahdanau's form ``v^T tanh(W h_t + U q)`` the query ``q`` is a second input
    (the decoder's state, notebook 06) and ``v`` still only scores; a learned, fixed ``q`` makes
    ``U q`` a constant, i.e. the bias ``b`` here. ``v`` has no bias because softmax ignores a shift.
    """

    exposes_attention = True  # capture_attention and inspect record its weights

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
        expose_attention(self, weights, mask=mask)  # free unless capture_attention is recording
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
            ``"seed_masked"``: the article's layer with the padding mask (an ablation);
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
            pooled, weights = self.attention(h)  # the article's layer: no mask
        elif self.pooling == "seed_masked":
            pooled, weights = self.attention(h, mask)  # the article's parameters, with the mask
        else:
            pooled, weights = self.attention(h, mask)
        out = self.head(pooled)  # (B, output_size)
        return (out.squeeze(-1) if self.output_size == 1 else out), weights

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_with_weights(x, lengths)[0]
