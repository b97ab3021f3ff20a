"""Encoder-decoder LSTMs with Bahdanau (additive) attention, wired correctly, and the article's wiring.

Bahdanau et al. (2015) score every encoder output ``h_j`` against the decoder's previous state
``q = s_{t-1}``::

    e_tj = v^T tanh(W_q q + W_k h_j)        a_t = softmax_j(e_tj)        c_t = sum_j a_tj h_j

so the decoder gets **one context per step**, a weighted mix of **all** encoder outputs (the keys
``h_j`` are also the values). ``v`` is the learned **score vector** (the ``v`` layer, the article's
``self.V``, Bahdanau's ``v_a``), never a value: the values mixed into ``c_t`` are the ``h_j``. Article 001
(example 3) calls the same layer with the roles swapped: the encoder's last state as the query and the
decoder's one-step output as the values. The softmax then runs over a single position and every
weight is exactly 1.0; :class:`SeedBahdanauModel` reproduces that wiring so a notebook can show it.

Shapes: ``B`` batch, ``S`` source length, ``T`` target length, ``H`` ``hidden_size``, ``A``
``attention_size``, ``C`` output size (classes for symbols, 1 for values). ``batch_first`` throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .capture import expose_attention
from .masks import lengths_to_mask

__all__ = [
    "BahdanauAttention",
    "Seq2SeqAttention",
    "Seq2SeqOutput",
    "SeedBahdanauModel",
    "greedy_step",
    "reverse_positions",
    "sequence_accuracy",
    "sequence_loss",
    "shift_right",
    "symbol_errors",
    "teacher_forcing_step",
]

TargetKind = Literal["symbols", "values"]


def _expect_ndim(name: str, tensor: torch.Tensor, ndim: int, layout: str) -> None:
    if tensor.ndim != ndim:
        raise ValueError(
            f"expected {name} of shape {layout} ({ndim}-D), got shape {tuple(tensor.shape)}"
        )


class BahdanauAttention(nn.Module):
    """Additive attention: ``score(q, k_j) = v^T tanh(W_q q + W_k k_j)``, softmax over the keys.

    ``v`` is the score vector (the ``v`` layer); the context mixes the **values** ``m_j`` (the keys
    unless given): ``c = sum_j a_j m_j``.

    Args:
        query_size: features of the query (the decoder state), ``Hq``.
        key_size: features of each key (an encoder output), ``Hk``.
        attention_size: width ``A`` of the hidden layer inside the score.

    Inputs: ``query, keys, values=None, mask=None``
        - **query** ``(B, Hq)``: one query per example (the decoder's previous state).
        - **keys** ``(B, S, Hk)``: what the query is compared with (every encoder output).
        - **values** ``(B, S, Hv)``: what is mixed; defaults to ``keys`` (as in Bahdanau et al.).
        - **mask** ``(B, S)`` bool, ``True`` on real steps: padded keys get weight exactly 0.

    Outputs: ``context, weights``
        - **context** ``(B, Hv)``: ``sum_j weights_j * values_j`` (``c = sum_j a_j m_j``).
        - **weights** ``(B, S)``: non-negative, summing to 1 over the real steps.

    Note:
        The softmax runs over the ``S`` keys. Give it one key (``S = 1``) and every weight is 1.0 no
        matter what the scores are; that is the bug of article 001, example 3.

    Its weights are recorded by :func:`course_utils.capture.capture_attention` (and shown by
    ``inspect``): one call per decoder step, joined into a steps x source alignment.
    """

    exposes_attention = True

    def __init__(self, query_size: int, key_size: int, attention_size: int) -> None:
        super().__init__()
        self.query_size, self.key_size = query_size, key_size
        self.W_q = nn.Linear(query_size, attention_size, bias=False)
        self.W_k = nn.Linear(key_size, attention_size)
        self.v = nn.Linear(attention_size, 1, bias=False)

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """``W_k k_j`` for every key, ``(B, S, A)``: compute it once per source, reuse every step."""
        _expect_ndim("keys", keys, 3, "(batch, seq_len, key_size)")
        if keys.shape[-1] != self.key_size:
            raise ValueError(
                f"expected keys with {self.key_size} features, got {keys.shape[-1]} "
                f"(shape {tuple(keys.shape)})"
            )
        return self.W_k(keys)

    def score(
        self, query: torch.Tensor, keys: torch.Tensor, *, projected_keys: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Unnormalised scores ``e_j = v^T tanh(W_q q + W_k k_j)``, shape ``(B, S)``."""
        _expect_ndim("query", query, 2, "(batch, query_size)")
        if query.shape[-1] != self.query_size:
            raise ValueError(
                f"expected a query with {self.query_size} features, got {query.shape[-1]}"
            )
        pk = self.project_keys(keys) if projected_keys is None else projected_keys
        if pk.shape[0] != query.shape[0]:
            raise ValueError(f"query has batch {query.shape[0]} but keys have batch {pk.shape[0]}")
        hidden = torch.tanh(self.W_q(query).unsqueeze(1) + pk)  # (B, 1, A) + (B, S, A) -> (B, S, A)
        return self.v(hidden).squeeze(-1)  # (B, S, 1) -> (B, S)

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        *,
        projected_keys: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        values = keys if values is None else values
        if values.shape[:2] != keys.shape[:2]:
            raise ValueError(
                f"keys and values must share (batch, seq_len), got {tuple(keys.shape[:2])} "
                f"and {tuple(values.shape[:2])}"
            )
        scores = self.score(query, keys, projected_keys=projected_keys)  # (B, S)
        if mask is not None:
            if mask.shape != scores.shape:
                raise ValueError(
                    f"expected mask of shape (batch, seq_len) = {tuple(scores.shape)}, "
                    f"got {tuple(mask.shape)}"
                )
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (B, S)
        expose_attention(self, weights, mask=mask)  # free unless capture_attention is recording
        context = torch.bmm(weights.unsqueeze(1), values).squeeze(1)  # (B, 1, S) @ (B, S, Hv)
        return context, weights


@dataclass
class Seq2SeqOutput:
    """What the decoder produced, and where it looked.

    Attributes:
        outputs: ``(B, T, C)`` logits (symbols) or predictions (values, ``C = 1``).
        attention: ``(B, T, S)`` the weights of every decoder step over the source steps.
        predictions: ``(B, T)`` argmax symbols, or the predicted values.
    """

    outputs: torch.Tensor
    attention: torch.Tensor
    predictions: torch.Tensor


class Seq2SeqAttention(nn.Module):
    """A stacked LSTM encoder and an LSTM decoder joined by Bahdanau attention.

    At decoder step ``t`` the query is the decoder's previous top-layer state ``s_{t-1}`` (for
    ``t = 0`` the encoder's final state, which also initialises the decoder); the keys and values are
    **every** encoder output; the context ``c_t`` is fed into the decoder with the previous target
    ``y_{t-1}``, and the output reads ``[s_t; c_t]``.

    Args:
        target_kind: ``"symbols"`` (source and target are token ids; the decoder starts from a
            ``<bos>`` id equal to ``vocab_size``) or ``"values"`` (source ``(B, S, input_size)``,
            target ``(B, T)`` real numbers; the decoder starts from the last source value).
        vocab_size: number of symbols (ids ``0 .. vocab_size - 1``, 0 is padding); symbols only.
        input_size: features per source step; values only.
        hidden_size: width of every LSTM layer.
        num_layers: layers of the encoder **and** the decoder (the encoder's final ``(h, c)`` of
            every layer initialises the decoder's layer).
        embed_dim: width of the symbol embedding (one table shared by source and target, which
            use the same symbols) / of the projected previous value.
        attention_size: width ``A`` inside the additive score (default ``hidden_size``).
        bidirectional: a bidirectional encoder, as in Bahdanau et al. (keys are ``2H`` wide, each
            one knows its own step's symbol and both neighbours; a learned bridge ``tanh(W [h_fwd;
            h_bwd])`` turns each layer's final states into the decoder's initial state).
        attend: ``False`` switches the attention off, the baseline of Sutskever et al. (2014) and
            Cho et al. (2014): the context is a zero vector, so the decoder knows the source only
            through the encoder's final state (the "bottleneck"); ``attention`` is then all zeros.
        uniform_attention: ``True`` freezes the weights at uniform, during training too: every
            decoder step gets the mean of the (real) encoder outputs as its context. This is the
            baseline of Wiegreffe & Pinter (2019), a model *trained* with uniform attention, the
            rival for "attention lets the model weigh the importance of ...". (Swapping uniform
            weights into a model trained with learned ones,
            :func:`course_utils.controls.with_uniform_attention`, is a post-hoc ablation: it shows
            dependence, not that focusing helps.)

    Inputs of ``forward(source, decoder_inputs, source_lengths=None)`` (teacher forcing):
        - **source** ``(B, S)`` ids or ``(B, S, input_size)`` values.
        - **decoder_inputs** ``(B, T)``: the previous target at every step,
          ``shift_right(target, model.start_inputs(source))``.
        - **source_lengths** ``(B,)`` optional: real lengths; padding is neither encoded nor attended.

    ``generate(source, steps)`` decodes greedily, feeding back its own predictions. Both return a
    :class:`Seq2SeqOutput` with the attention weights of every step.
    """

    def __init__(
        self,
        *,
        target_kind: TargetKind,
        vocab_size: int | None = None,
        input_size: int | None = None,
        hidden_size: int = 64,
        num_layers: int = 2,
        embed_dim: int = 16,
        attention_size: int | None = None,
        bidirectional: bool = False,
        attend: bool = True,
        uniform_attention: bool = False,
    ) -> None:
        super().__init__()
        if uniform_attention and not attend:
            raise ValueError("uniform_attention needs attend=True (attend=False has no context)")
        self.attend, self.uniform_attention = attend, uniform_attention
        if target_kind == "symbols":
            if not vocab_size or vocab_size < 3:
                raise ValueError(f"symbols need vocab_size >= 3, got {vocab_size!r}")
            self.embedding = nn.Embedding(vocab_size + 1, embed_dim, padding_idx=0)  # + <bos>
            self.target_embed: nn.Module = self.embedding
            enc_in, out_size = embed_dim, vocab_size
        elif target_kind == "values":
            if not input_size or input_size < 1:
                raise ValueError(f"values need input_size >= 1, got {input_size!r}")
            self.embedding = None
            self.target_embed = nn.Linear(1, embed_dim)
            enc_in, out_size = input_size, 1
        else:
            raise ValueError(f"target_kind must be 'symbols' or 'values', got {target_kind!r}")
        self.target_kind, self.vocab_size, self.input_size = target_kind, vocab_size, input_size
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.bidirectional = bidirectional
        key_size = 2 * hidden_size if bidirectional else hidden_size
        self.encoder = nn.LSTM(
            enc_in, hidden_size, num_layers, batch_first=True, bidirectional=bidirectional
        )
        self.bridge_h = nn.Linear(key_size, hidden_size) if bidirectional else None
        self.bridge_c = nn.Linear(key_size, hidden_size) if bidirectional else None
        self.attention = BahdanauAttention(hidden_size, key_size, attention_size or hidden_size)
        self.decoder = nn.LSTM(embed_dim + key_size, hidden_size, num_layers, batch_first=True)
        self.readout = nn.Linear(hidden_size + key_size, out_size)

    # -- pieces ------------------------------------------------------------------------------------
    @property
    def bos(self) -> int:
        """The id the decoder starts from (symbols only): one past the last symbol."""
        if self.vocab_size is None:
            raise ValueError("values models start from the last source value, not a <bos> id")
        return self.vocab_size

    def start_inputs(
        self, source: torch.Tensor, source_lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The decoder's first input, ``(B,)``: ``<bos>`` ids, or the last real source value
        (feature 0; with ``source_lengths``, the value at step ``length - 1``, not the padding)."""
        if self.target_kind == "symbols":
            return torch.full((source.shape[0],), self.bos, dtype=torch.long, device=source.device)
        if source_lengths is None:
            return source[:, -1, 0]
        rows = torch.arange(source.shape[0], device=source.device)
        return source[rows, source_lengths.to(source.device) - 1, 0]

    def _check_source(self, source: torch.Tensor) -> None:
        if self.target_kind == "symbols":
            _expect_ndim("source", source, 2, "(batch, seq_len) of symbol ids")
        else:
            _expect_ndim("source", source, 3, f"(batch, seq_len, input_size={self.input_size})")
            if source.shape[-1] != self.input_size:
                raise ValueError(
                    f"expected source of shape (batch, seq_len, {self.input_size}), "
                    f"got {tuple(source.shape)}"
                )

    def encode(
        self, source: torch.Tensor, source_lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor], torch.Tensor | None]:
        """Run the encoder: ``keys (B, S, H or 2H)``, the decoder's first ``(h, c)``, ``mask``.

        With ``source_lengths`` the padded steps are packed away, so the final state is the state
        after each sequence's own last step, and ``mask`` marks the real steps.
        """
        self._check_source(source)
        x = self.embedding(source) if self.embedding is not None else source  # (B, S, E or F)
        if source_lengths is None:
            keys, state = self.encoder(x)
            return keys, self._bridge(state), None
        mask = lengths_to_mask(source_lengths.to(source.device), source.shape[1])
        packed = pack_padded_sequence(
            x, source_lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, state = self.encoder(packed)
        keys, _ = pad_packed_sequence(out, batch_first=True, total_length=source.shape[1])
        return keys, self._bridge(state), mask

    def _bridge(
        self, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder final ``(h, c)`` -> decoder initial ``(h, c)``, each ``(L, B, H)``."""
        if not self.bidirectional:
            return state
        h, c = state  # (L * 2, B, H), directions interleaved per layer
        L, B, H = self.num_layers, h.shape[1], self.hidden_size
        h = h.view(L, 2, B, H).permute(0, 2, 1, 3).reshape(L, B, 2 * H)  # (L, B, 2H)
        c = c.view(L, 2, B, H).permute(0, 2, 1, 3).reshape(L, B, 2 * H)
        return torch.tanh(self.bridge_h(h)).contiguous(), self.bridge_c(c).contiguous()

    def decode_step(
        self,
        previous: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor],
        keys: torch.Tensor,
        projected_keys: torch.Tensor,
        mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        """One decoder step: ``(output (B, C), new state, weights (B, S))``.

        ``previous`` is ``y_{t-1}`` (``(B,)`` ids or values); the query is ``state[0][-1]``, the
        top layer's ``s_{t-1}``.
        """
        if self.target_kind == "symbols":
            prev = self.target_embed(previous)  # (B,) -> (B, E)
        else:
            prev = self.target_embed(previous.unsqueeze(-1).to(keys.dtype))  # (B, 1) -> (B, E)
        if self.uniform_attention:  # frozen uniform weights: 1/S on every real source step
            real = keys.new_ones(keys.shape[:2]) if mask is None else mask.to(keys.dtype)  # (B, S)
            weights = real / real.sum(dim=-1, keepdim=True)  # (B, S)
            expose_attention(self.attention, weights, mask=mask)  # recorded as the module's own
            context = torch.bmm(weights.unsqueeze(1), keys).squeeze(1)  # (B, H or 2H)
        elif self.attend:
            context, weights = self.attention(
                state[0][-1], keys, mask=mask, projected_keys=projected_keys
            )  # (B, H), (B, S)
        else:  # no attention: the source reaches the decoder only through its initial state
            context = keys.new_zeros(keys.shape[0], keys.shape[-1])  # (B, H or 2H)
            weights = keys.new_zeros(keys.shape[:2])  # (B, S)
        step_in = torch.cat([prev, context], dim=-1).unsqueeze(1)  # (B, 1, E + H)
        out, state = self.decoder(step_in, state)  # out (B, 1, H)
        output = self.readout(torch.cat([out.squeeze(1), context], dim=-1))  # (B, C)
        return output, state, weights

    def _finish(self, outputs: list[torch.Tensor], weights: list[torch.Tensor]) -> Seq2SeqOutput:
        out = torch.stack(outputs, dim=1)  # T x (B, C) -> (B, T, C)
        preds = out.argmax(-1) if self.target_kind == "symbols" else out.squeeze(-1)
        return Seq2SeqOutput(out, torch.stack(weights, dim=1), preds)  # attention (B, T, S)

    # -- decoding ----------------------------------------------------------------------------------
    def forward(
        self,
        source: torch.Tensor,
        decoder_inputs: torch.Tensor,
        source_lengths: torch.Tensor | None = None,
    ) -> Seq2SeqOutput:
        """Teacher forcing: step ``t`` is fed the true ``y_{t-1}`` from ``decoder_inputs``."""
        _expect_ndim("decoder_inputs", decoder_inputs, 2, "(batch, target_len)")
        if decoder_inputs.shape[0] != source.shape[0]:
            raise ValueError(
                f"source has batch {source.shape[0]} but decoder_inputs has {decoder_inputs.shape[0]}"
            )
        keys, state, mask = self.encode(source, source_lengths)
        if self.uniform_attention or not self.attend:
            return self._forward_fixed_context(decoder_inputs, state, keys, mask)
        projected = self.attention.project_keys(keys)  # once per source, (B, S, A)
        outputs, weights = [], []
        for t in range(decoder_inputs.shape[1]):
            out, state, w = self.decode_step(decoder_inputs[:, t], state, keys, projected, mask)
            outputs.append(out)
            weights.append(w)
        return self._finish(outputs, weights)

    def _forward_fixed_context(
        self,
        decoder_inputs: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor],
        keys: torch.Tensor,
        mask: torch.Tensor | None,
    ) -> Seq2SeqOutput:
        """Teacher forcing when the context cannot depend on the decoder (uniform or no attention).

        Every step's context is the same (the mean of the real encoder outputs, or zeros), and with
        teacher forcing every step's previous target is known, so the decoder runs over all ``T``
        steps in one LSTM call: the same computation as the step-by-step loop, several times faster.
        """
        T = decoder_inputs.shape[1]
        if self.target_kind == "symbols":
            prev = self.target_embed(decoder_inputs)  # (B, T) -> (B, T, E)
        else:
            prev = self.target_embed(decoder_inputs.unsqueeze(-1).to(keys.dtype))  # (B, T, E)
        if self.uniform_attention:
            real = keys.new_ones(keys.shape[:2]) if mask is None else mask.to(keys.dtype)  # (B, S)
            weights = real / real.sum(dim=-1, keepdim=True)  # (B, S)
            # every step gets the same weights: recorded once, as T rows
            expose_attention(self.attention, weights.unsqueeze(1).expand(-1, T, -1), mask=mask)
            context = torch.bmm(weights.unsqueeze(1), keys).squeeze(1)  # (B, H or 2H)
        else:
            context = keys.new_zeros(keys.shape[0], keys.shape[-1])  # (B, H or 2H)
            weights = keys.new_zeros(keys.shape[:2])  # (B, S)
        context = context.unsqueeze(1).expand(-1, T, -1)  # (B, T, H or 2H)
        out, _ = self.decoder(torch.cat([prev, context], dim=-1), state)  # (B, T, H)
        outputs = self.readout(torch.cat([out, context], dim=-1))  # (B, T, C)
        preds = outputs.argmax(-1) if self.target_kind == "symbols" else outputs.squeeze(-1)
        return Seq2SeqOutput(outputs, weights.unsqueeze(1).expand(-1, T, -1).clone(), preds)

    @torch.no_grad()
    def generate(
        self, source: torch.Tensor, steps: int, source_lengths: torch.Tensor | None = None
    ) -> Seq2SeqOutput:
        """Greedy decoding: step ``t`` is fed the model's own prediction from step ``t - 1``."""
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        keys, state, mask = self.encode(source, source_lengths)
        projected = self.attention.project_keys(keys)
        previous = self.start_inputs(source, source_lengths)
        outputs, weights = [], []
        for _ in range(steps):
            out, state, w = self.decode_step(previous, state, keys, projected, mask)
            outputs.append(out)
            weights.append(w)
            previous = out.argmax(-1) if self.target_kind == "symbols" else out.squeeze(-1)
        return self._finish(outputs, weights)


def shift_right(target: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """Teacher-forcing decoder inputs: ``[start, y_0, ..., y_{T-2}]`` for target ``(B, T)``.

    Step ``t`` must see ``y_{t-1}``, never ``y_t`` itself (feeding the target unshifted lets the
    decoder copy the answer, a leak that trains to a perfect but useless model).
    """
    _expect_ndim("target", target, 2, "(batch, target_len)")
    if start.shape != target.shape[:1]:
        raise ValueError(
            f"expected start of shape (batch,) = ({target.shape[0]},), got {tuple(start.shape)}"
        )
    return torch.cat([start.unsqueeze(1).to(target.dtype), target[:, :-1]], dim=1)  # (B, T)


def teacher_forcing_step(
    model: Seq2SeqAttention, batch: tuple[torch.Tensor, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """A ``step`` for :func:`course_utils.training.train`: ``(source, target)`` -> outputs, target.

    Outputs are ``(B, T, C)``; use :func:`sequence_loss` as the loss.
    """
    source, target = batch
    decoder_inputs = shift_right(target, model.start_inputs(source))
    return model(source, decoder_inputs).outputs, target


def greedy_step(
    model: Seq2SeqAttention, batch: tuple[torch.Tensor, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Like :func:`teacher_forcing_step` but the decoder feeds back its own predictions.

    For :func:`course_utils.training.evaluate` only: greedy decoding runs without gradients.
    """
    source, target = batch
    return model.generate(source, target.shape[1]).outputs, target


def sequence_loss(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over ``(B, T, C)`` logits and ``(B, T)`` ids, or MSE for ``C = 1`` values."""
    if outputs.shape[:2] != target.shape[:2]:
        raise ValueError(
            f"outputs {tuple(outputs.shape)} and target {tuple(target.shape)} "
            f"must share (batch, target_len)"
        )
    if target.dtype == torch.long:
        return F.cross_entropy(outputs.flatten(0, 1), target.flatten())  # (B*T, C), (B*T,)
    return F.mse_loss(outputs.squeeze(-1), target)


def sequence_accuracy(outputs: torch.Tensor, target: torch.Tensor) -> float:
    """Share of sequences whose every step is right (``(B, T, C)`` logits, ``(B, T)`` ids)."""
    return (outputs.argmax(-1) == target).all(dim=1).float().mean().item()


@torch.no_grad()
def symbol_errors(model: Seq2SeqAttention, data: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Greedy decoding of ``(source, target)``: each sequence's share of wrong symbols, ``(N,)``.

    One number per test sequence, so the items of a paired comparison are independent.
    """
    source, target = data
    _expect_ndim("target", target, 2, "(batch, target_len)")
    return (model.generate(source, target.shape[1]).predictions != target).float().mean(dim=1)


def reverse_positions(seq_len: int) -> torch.Tensor:
    """Where decoder step ``t`` should look when reversing: source step ``seq_len - 1 - t``."""
    return torch.arange(seq_len - 1, -1, -1)


# -- the article's wiring (article 001, example 3), ported line by line to PyTorch ----------------------
class SeedBahdanauModel(nn.Module):
    """Article 001 example 3 in PyTorch, **with its wiring kept**, for the claim check.

    Keras original::

        encoder = LSTM(64, return_sequences=True)(encoder_inputs)
        encoder_last = encoder[:, -1, :]
        decoder_lstm = LSTM(64, return_sequences=True)(decoder_inputs)      # (B, 1, 64)
        context, weights = BahdanauAttention(64)(encoder_last, decoder_lstm) # query, values
        output = Dense(10)(concatenate([context, decoder_lstm[:, -1, :]]))

    The attention layer is the same additive layer as :class:`BahdanauAttention`; only the call is
    wrong: the values have one step, so the softmax runs over one position.

    Inputs: ``encoder_inputs (B, S, input_size)``, ``decoder_inputs (B, 1, input_size)``.
    Outputs: ``output (B, output_size)`` and ``weights (B, 1)``.
    """

    def __init__(self, input_size: int, hidden_size: int = 64, output_size: int = 10) -> None:
        super().__init__()
        self.encoder = nn.LSTM(input_size, hidden_size, batch_first=True)  # one layer, as in Keras
        self.decoder = nn.LSTM(input_size, hidden_size, batch_first=True)  # starts from zeros
        self.attention = BahdanauAttention(hidden_size, hidden_size, hidden_size)
        self.dense = nn.Linear(2 * hidden_size, output_size)

    def forward(
        self, encoder_inputs: torch.Tensor, decoder_inputs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _expect_ndim("encoder_inputs", encoder_inputs, 3, "(batch, seq_len, input_size)")
        _expect_ndim("decoder_inputs", decoder_inputs, 3, "(batch, 1, input_size)")
        encoder, _ = self.encoder(encoder_inputs)  # (B, S, H)
        encoder_last = encoder[:, -1, :]  # (B, H): used as the query
        decoder, _ = self.decoder(decoder_inputs)  # (B, 1, H): used as keys and values
        context, weights = self.attention(encoder_last, decoder)  # (B, H), (B, 1)
        combined = torch.cat([context, decoder[:, -1, :]], dim=-1)  # (B, 2H)
        return self.dense(combined), weights
