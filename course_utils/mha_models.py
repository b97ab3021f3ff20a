"""The three designs of article 003 (``nn.LSTM`` + ``nn.MultiheadAttention``), as written and corrected.

Article 003 stacks self-attention on the per-step outputs of an LSTM in three ways:

1. LSTM -> MultiheadAttention -> Linear (:class:`SeedLSTMWithAttention`, :class:`LSTMAttention`),
2. Embedding -> LSTM -> MultiheadAttention -> Linear over the vocabulary, offered "for text generation"
   (:class:`SeedLSTMWithAttentionEmbed`, :class:`LSTMAttentionLM`),
3. LSTM and attention outputs concatenated -> feed-forward (:class:`SeedLSTMWithAttentionAndFFN`,
   :class:`LSTMAttentionFFN`).

The ``Seed*`` classes are the article's code (typed, the parts the three share written once,
otherwise unchanged). The corrected classes differ
where the article goes wrong:

- **causal mask**: self-attention over all LSTM outputs lets step ``t`` read steps after ``t``. A
  next-token model then learns to copy the answer from the future; :class:`LSTMAttentionLM` masks the
  future by default (``causal=True``);
- **padding**: each corrected model takes a ``key_padding_mask`` (True at padding,
  :func:`course_utils.masks.padding_mask`) and passes it to the attention, so no query attends to
  padding;
- **dropout**: ``nn.LSTM`` applies ``dropout`` between layers only; with ``num_layers=1`` PyTorch warns
  and ignores it, so the corrected models pass it only when there is more than one layer.

The small seeded tasks each design is trained on in notebook 07 live in :mod:`course_utils.tasks`.

Shapes: ``B`` batch, ``T`` steps (``seq_len``), ``H`` ``hidden_size`` (the attention's ``embed_dim``),
``V`` ``vocab_size``.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from .masks import causal_mask

__all__ = [
    "SeedLSTMWithAttention",
    "SeedLSTMWithAttentionEmbed",
    "SeedLSTMWithAttentionAndFFN",
    "LSTMAttention",
    "LSTMAttentionLM",
    "LSTMAttentionFFN",
    "LSTMOnly",
    "AttentionOnly",
]


# --------------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------------
def _check_input(x: torch.Tensor, input_size: int) -> None:
    if x.dim() != 3 or x.shape[-1] != input_size:
        raise ValueError(
            f"expected x of shape (batch, seq_len, input_size) = (*, *, {input_size}), "
            f"got {tuple(x.shape)}"
        )


def _check_padding_mask(mask: torch.Tensor | None, batch: int, seq_len: int) -> None:
    if mask is None:
        return
    if mask.dtype != torch.bool:
        raise TypeError(
            f"key_padding_mask must be boolean (True at padding), got dtype {mask.dtype}"
        )
    if tuple(mask.shape) != (batch, seq_len):
        raise ValueError(
            f"key_padding_mask must have shape (batch, seq_len) = ({batch}, {seq_len}), got "
            f"{tuple(mask.shape)}; build it with padding_mask(lengths, seq_len)"
        )


# --------------------------------------------------------------------------------------------------
# The article's code (article 003), unchanged apart from type hints and the shared parts written once
# --------------------------------------------------------------------------------------------------
def _head(in_features: int, ffn_hidden_size: int, output_size: int) -> nn.Sequential:
    """The feed-forward head of design 3, which every baseline shares."""
    return nn.Sequential(
        nn.Linear(in_features, ffn_hidden_size),
        nn.ReLU(),
        nn.Linear(ffn_hidden_size, output_size),
    )


class _SeedLSTMAttention(nn.Module):
    """What the article's three examples share: an LSTM, then self-attention over its outputs."""

    def _build(
        self, input_size: int, hidden_size: int, num_layers: int, num_heads: int, dropout: float
    ) -> None:
        # As the article writes it: dropout goes to nn.LSTM even with one layer (PyTorch warns).
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True, dropout=dropout)
        self.attention = nn.MultiheadAttention(
            hidden_size, num_heads, dropout=dropout, batch_first=True
        )

    def _run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lstm_output, _ = self.lstm(x)  # (B, T, H)
        attention_output, _ = self.attention(lstm_output, lstm_output, lstm_output)  # (B, T, H)
        return lstm_output, attention_output


class SeedLSTMWithAttention(_SeedLSTMAttention):
    """Article 003, example 1: LSTM -> MultiheadAttention -> Linear, as the article writes it.

    Inputs ``x (B, T, input_size)``; output ``(B, T, input_size)``. No masks of any kind: every step
    attends to every step (the future and padding included).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        num_heads: int,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self._build(input_size, hidden_size, num_layers, num_heads, dropout)
        self.fc = nn.Linear(hidden_size, input_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, attention_output = self._run(x)  # (B, T, H)
        return self.fc(attention_output)  # (B, T, input_size)


class SeedLSTMWithAttentionEmbed(_SeedLSTMAttention):
    """Article 003, example 2: Embedding -> LSTM -> MultiheadAttention -> Linear over the vocabulary.

    The article offers it for "text generation", but without a causal mask step ``t`` sees the tokens
    it is asked to predict. Inputs ``tokens (B, T)``; output logits ``(B, T, vocab_size)``.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        hidden_size: int,
        num_layers: int,
        num_heads: int,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self._build(embedding_dim, hidden_size, num_layers, num_heads, dropout)
        self.fc = nn.Linear(hidden_size, vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_embed = self.embedding(x)  # (B, T, embedding_dim)
        _, attention_output = self._run(x_embed)  # (B, T, H)
        return self.fc(attention_output)  # (B, T, V)


class SeedLSTMWithAttentionAndFFN(_SeedLSTMAttention):
    """Article 003, example 3: LSTM and attention outputs concatenated -> feed-forward network.

    Inputs ``x (B, T, input_size)``; output ``(B, T, input_size)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        num_heads: int,
        dropout: float = 0.1,
        ffn_hidden_size: int = 256,
    ) -> None:
        super().__init__()
        self._build(input_size, hidden_size, num_layers, num_heads, dropout)
        self.feedforward = _head(hidden_size * 2, ffn_hidden_size, input_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lstm_output, attention_output = self._run(x)  # (B, T, H) each
        concatenated_output = torch.cat((lstm_output, attention_output), dim=2)  # (B, T, 2H)
        return self.feedforward(concatenated_output)  # (B, T, input_size)


# --------------------------------------------------------------------------------------------------
# Corrected designs
# --------------------------------------------------------------------------------------------------
class _LSTMSelfAttention(nn.Module):
    """Shared part of the corrected designs: LSTM over the steps, then masked self-attention.

    Args:
        input_size: features per step fed to the LSTM.
        hidden_size: LSTM width, also the attention's ``embed_dim``.
        num_layers: stacked LSTM layers (``dropout`` is applied between them only).
        num_heads: attention heads; ``hidden_size`` must be divisible by it.
        dropout: dropout between LSTM layers (when ``num_layers > 1``) and on the attention weights.
        causal: mask the future (query ``i`` sees keys ``j <= i`` only). Needed for generation.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        num_heads: int,
        dropout: float,
        causal: bool,
    ) -> None:
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(
                f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads}): each head "
                f"gets hidden_size // num_heads features; try num_heads in "
                f"{[h for h in range(1, hidden_size + 1) if hidden_size % h == 0][:6]}"
            )
        self.input_size = input_size
        self.causal = causal
        self.lstm = nn.LSTM(
            input_size,
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.attention = nn.MultiheadAttention(
            hidden_size, num_heads, dropout=dropout, batch_first=True
        )

    def _lstm_and_attention(
        self, x: torch.Tensor, key_padding_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _check_input(x, self.input_size)
        batch, seq_len, _ = x.shape
        _check_padding_mask(key_padding_mask, batch, seq_len)
        # A forward LSTM never reads ahead, so trailing padding leaves its real steps untouched.
        lstm_output, _ = self.lstm(x)  # (B, T, H)
        attn_mask = causal_mask(seq_len, x.device) if self.causal else None
        attention_output, _ = self.attention(
            lstm_output,
            lstm_output,
            lstm_output,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            need_weights=False,  # we do not use them (capture_attention can still record them)
        )  # (B, T, H)
        return lstm_output, attention_output


class _PerStepDesign(_LSTMSelfAttention):
    """Designs 1 and 3: ``x (B, T, input_size) -> (B, T, output_size)``, a head on every step.

    A design adds its head in ``_add_head(hidden_size, output_size, **head)`` (``head``: the
    design's own keyword arguments) and applies it in ``_predict(lstm_output, attention_output)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        num_heads: int = 2,
        *,
        output_size: int | None = None,
        dropout: float = 0.0,
        causal: bool = False,
        **head: int,
    ) -> None:
        super().__init__(input_size, hidden_size, num_layers, num_heads, dropout, causal)
        self._add_head(hidden_size, output_size or input_size, **head)

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        # help() and inspect show the design's own head options where __init__ has **head
        shared = list(inspect.signature(_PerStepDesign.__init__).parameters.values())[1:-1]
        options = list(inspect.signature(cls._add_head).parameters.values())[3:]
        cls.__signature__ = inspect.Signature(
            shared + [p.replace(kind=p.KEYWORD_ONLY) for p in options], return_annotation=None
        )

    def _add_head(self, hidden_size: int, output_size: int) -> None:
        raise NotImplementedError

    def _predict(self, lstm_output: torch.Tensor, attention_output: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        lstm_output, attention_output = self._lstm_and_attention(x, key_padding_mask)
        return self._predict(lstm_output, attention_output)  # (B, T, output_size)


class LSTMAttention(_PerStepDesign):
    """Design 1, corrected: LSTM -> MultiheadAttention -> Linear, with padding (and optional causal) masks.

    Args:
        input_size, hidden_size, num_layers, num_heads, dropout, causal: see the attention block.
        output_size: features predicted per step (default ``input_size``, as in the article).

    Inputs:
        x: ``(B, T, input_size)``.
        key_padding_mask: optional boolean ``(B, T)``, True at padding (:func:`padding_mask`).

    Output:
        ``(B, T, output_size)``; values at padded steps are meaningless, leave them out of the loss.
    """

    def _add_head(self, hidden_size: int, output_size: int) -> None:
        self.fc = nn.Linear(hidden_size, output_size)

    def _predict(self, lstm_output: torch.Tensor, attention_output: torch.Tensor) -> torch.Tensor:
        return self.fc(attention_output)  # (B, T, output_size)


class LSTMAttentionLM(_LSTMSelfAttention):
    """Design 2, corrected: a next-token model Embedding -> LSTM -> *causal* attention -> Linear.

    Args:
        vocab_size: number of token ids.
        embedding_dim: size of each token's embedding (the LSTM's ``input_size``).
        hidden_size, num_layers, num_heads, dropout: see the attention block.
        causal: keep ``True`` for generation. ``False`` rebuilds the article's leak (for the demo).

    Inputs:
        tokens: ``(B, T)`` int64 ids.
        key_padding_mask: optional boolean ``(B, T)``, True at padding.

    Output:
        logits ``(B, T, vocab_size)``: position ``t`` predicts token ``t + 1``.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        hidden_size: int,
        num_layers: int = 1,
        num_heads: int = 2,
        *,
        dropout: float = 0.0,
        causal: bool = True,
    ) -> None:
        super().__init__(embedding_dim, hidden_size, num_layers, num_heads, dropout, causal)
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.fc = nn.Linear(hidden_size, vocab_size)

    def forward(
        self, tokens: torch.Tensor, key_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        if tokens.dim() != 2 or tokens.dtype != torch.long:
            raise ValueError(
                f"expected tokens of shape (batch, seq_len) and dtype int64, got shape "
                f"{tuple(tokens.shape)} and dtype {tokens.dtype}"
            )
        _, attention_output = self._lstm_and_attention(self.embedding(tokens), key_padding_mask)
        return self.fc(attention_output)  # (B, T, V)


class LSTMAttentionFFN(_PerStepDesign):
    """Design 3, corrected: LSTM and attention outputs concatenated -> feed-forward, with masks.

    Each step gets both what the LSTM has read so far and what attention gathered from the whole
    sequence: ``ffn([h_t ; attn_t])``.

    Args:
        input_size, hidden_size, num_layers, num_heads, dropout, causal: see the attention block.
        ffn_hidden_size: width of the feed-forward network's hidden layer (keyword, default 64).
        output_size: features predicted per step (default ``input_size``, as in the article).

    Inputs: ``x (B, T, input_size)``, optional ``key_padding_mask (B, T)``.
    Output: ``(B, T, output_size)``.
    """

    def _add_head(self, hidden_size: int, output_size: int, ffn_hidden_size: int = 64) -> None:
        self.feedforward = _head(hidden_size * 2, ffn_hidden_size, output_size)

    def _predict(self, lstm_output: torch.Tensor, attention_output: torch.Tensor) -> torch.Tensor:
        both = torch.cat((lstm_output, attention_output), dim=-1)  # (B, T, 2H)
        return self.feedforward(both)  # (B, T, output_size)


# --------------------------------------------------------------------------------------------------
# Each module in isolation: the baselines for "combining them ... over either module in isolation"
# --------------------------------------------------------------------------------------------------
class LSTMOnly(nn.Module):
    """An LSTM alone: ``ffn(h_t)`` per step, the same head as design 3 without the attention half.

    ``bidirectional=True`` lets step ``t`` read the steps after it too (``h_t`` is ``2H`` wide), the
    thing a forward LSTM cannot do and attention is usually added for.

    Inputs ``x (B, T, input_size)``; output ``(B, T, output_size)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        bidirectional: bool = False,
        ffn_hidden_size: int = 64,
        output_size: int | None = None,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True, bidirectional=bidirectional)
        width = hidden_size * (2 if bidirectional else 1)
        self.feedforward = _head(width, ffn_hidden_size, output_size or input_size)

    def forward(
        self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        _check_input(x, self.input_size)
        lstm_output, _ = self.lstm(x)  # (B, T, H or 2H); trailing padding never reaches real steps
        return self.feedforward(lstm_output)  # (B, T, output_size)


class AttentionOnly(nn.Module):
    """Self-attention alone: ``ffn([e_t ; attn_t])`` with ``e_t = W x_t (+ p_t)``, no LSTM.

    The LSTM half of design 3 is replaced by a linear embedding of each step, so every step still
    knows its own input. Without ``max_len`` there is no position information at all: self-attention
    is then *permutation-equivariant* (shuffle the steps and the outputs shuffle the same way), so it
    cannot tell "before" from "after". With ``max_len`` a learned position embedding ``p_t`` is added.

    Inputs ``x (B, T, input_size)``, optional ``key_padding_mask (B, T)``; output
    ``(B, T, output_size)``.
    """

    def __init__(
        self,
        input_size: int,
        embed_dim: int,
        num_heads: int = 2,
        *,
        max_len: int | None = None,
        ffn_hidden_size: int = 64,
        output_size: int | None = None,
    ) -> None:
        super().__init__()
        self.input_size, self.max_len = input_size, max_len
        self.embed = nn.Linear(input_size, embed_dim)
        self.positions = nn.Embedding(max_len, embed_dim) if max_len else None
        self.attention = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)
        self.feedforward = _head(2 * embed_dim, ffn_hidden_size, output_size or input_size)

    def forward(
        self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        _check_input(x, self.input_size)
        batch, seq_len, _ = x.shape
        _check_padding_mask(key_padding_mask, batch, seq_len)
        e = self.embed(x)  # (B, T, E)
        if self.positions is not None:
            if seq_len > self.max_len:
                raise ValueError(f"seq_len {seq_len} exceeds max_len {self.max_len}")
            e = e + self.positions(torch.arange(seq_len, device=x.device))  # (T, E) broadcast
        a, _ = self.attention(e, e, e, key_padding_mask=key_padding_mask, need_weights=False)
        return self.feedforward(torch.cat((e, a), dim=-1))  # (B, T, 2E) -> (B, T, output_size)
