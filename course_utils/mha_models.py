"""The three designs of seed 003 (``nn.LSTM`` + ``nn.MultiheadAttention``), as written and corrected.

Seed 003 stacks self-attention on the per-step outputs of an LSTM in three ways:

1. LSTM -> MultiheadAttention -> Linear (:class:`SeedLSTMWithAttention`, :class:`LSTMAttention`),
2. Embedding -> LSTM -> MultiheadAttention -> Linear over the vocabulary, offered "for text generation"
   (:class:`SeedLSTMWithAttentionEmbed`, :class:`LSTMAttentionLM`),
3. LSTM and attention outputs concatenated -> feed-forward (:class:`SeedLSTMWithAttentionAndFFN`,
   :class:`LSTMAttentionFFN`).

The ``Seed*`` classes are the article's code (typed, otherwise unchanged). The corrected classes differ
where the article goes wrong:

- **causal mask**: self-attention over all LSTM outputs lets step ``t`` read steps after ``t``. A
  next-token model then learns to copy the answer from the future; :class:`LSTMAttentionLM` masks the
  future by default (``causal=True``);
- **padding**: each corrected model takes a ``key_padding_mask`` (True at padding) and passes it to the
  attention, so no query attends to padding;
- **dropout**: ``nn.LSTM`` applies ``dropout`` between layers only; with ``num_layers=1`` PyTorch warns
  and ignores it, so the corrected models pass it only when there is more than one layer.

The small seeded tasks each design is trained on in notebook 07 live here too, next to the models that
suit them: :func:`marked_value_task`, :func:`marked_token_task`, :func:`next_token_task`,
:func:`duplicate_task`.

Shapes: ``B`` batch, ``T`` steps (``seq_len``), ``H`` ``hidden_size`` (the attention's ``embed_dim``),
``V`` ``vocab_size``.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

__all__ = [
    "causal_mask",
    "padding_mask",
    "SeedLSTMWithAttention",
    "SeedLSTMWithAttentionEmbed",
    "SeedLSTMWithAttentionAndFFN",
    "LSTMAttention",
    "LSTMAttentionLM",
    "LSTMAttentionFFN",
    "marked_value_task",
    "marked_token_task",
    "next_token_task",
    "next_token_floor",
    "duplicate_task",
    "masked_mse",
    "future_attention",
    "LSTMOnly",
    "AttentionOnly",
    "with_uniform_attention",
    "freeze_uniform_attention",
    "without_head",
    "runs_fast_path",
    "fused_kernel_calls",
    "counted_cost",
]


# --------------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------------
def causal_mask(seq_len: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Boolean ``attn_mask`` ``(T, T)`` that stops query ``i`` from attending to any key ``j > i``.

    ``True`` means *not allowed* (PyTorch's convention for boolean masks in
    ``nn.MultiheadAttention``): the strict upper triangle.

    Example:
        >>> causal_mask(3).int()
        tensor([[0, 1, 1],
                [0, 0, 1],
                [0, 0, 0]], dtype=torch.int32)
    """
    if not isinstance(seq_len, int) or seq_len < 1:
        raise ValueError(f"seq_len must be a positive int, got {seq_len!r}")
    return torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).triu(diagonal=1)


def padding_mask(lengths: torch.Tensor, seq_len: int | None = None) -> torch.Tensor:
    """Boolean ``key_padding_mask`` ``(B, T)``: True at the padded steps ``t >= lengths[b]``.

    Args:
        lengths: real length of each sequence, shape ``(B,)``.
        seq_len: padded length ``T`` (default: the longest length).
    """
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1 or lengths.numel() == 0:
        raise ValueError(
            f"lengths must be a non-empty 1-D tensor (B,), got shape {tuple(lengths.shape)}"
        )
    seq_len = int(lengths.max()) if seq_len is None else seq_len
    if int(lengths.min()) < 1 or int(lengths.max()) > seq_len:
        raise ValueError(
            f"lengths must lie in [1, seq_len={seq_len}], got {int(lengths.min())}..{int(lengths.max())}"
        )
    steps = torch.arange(seq_len, device=lengths.device)
    return steps.unsqueeze(0) >= lengths.unsqueeze(1)  # (B, T)


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
# The article's code (seed 003), unchanged apart from type hints
# --------------------------------------------------------------------------------------------------
class SeedLSTMWithAttention(nn.Module):
    """Seed 003, example 1: LSTM -> MultiheadAttention -> Linear, as the article writes it.

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
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True, dropout=dropout)
        self.attention = nn.MultiheadAttention(
            hidden_size, num_heads, dropout=dropout, batch_first=True
        )
        self.fc = nn.Linear(hidden_size, input_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lstm_output, _ = self.lstm(x)  # (B, T, H)
        attention_output, _ = self.attention(lstm_output, lstm_output, lstm_output)  # (B, T, H)
        return self.fc(attention_output)  # (B, T, input_size)


class SeedLSTMWithAttentionEmbed(nn.Module):
    """Seed 003, example 2: Embedding -> LSTM -> MultiheadAttention -> Linear over the vocabulary.

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
        self.lstm = nn.LSTM(
            embedding_dim, hidden_size, num_layers, batch_first=True, dropout=dropout
        )
        self.attention = nn.MultiheadAttention(
            hidden_size, num_heads, dropout=dropout, batch_first=True
        )
        self.fc = nn.Linear(hidden_size, vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_embed = self.embedding(x)  # (B, T, embedding_dim)
        lstm_output, _ = self.lstm(x_embed)  # (B, T, H)
        attention_output, _ = self.attention(lstm_output, lstm_output, lstm_output)  # (B, T, H)
        return self.fc(attention_output)  # (B, T, V)


class SeedLSTMWithAttentionAndFFN(nn.Module):
    """Seed 003, example 3: LSTM and attention outputs concatenated -> feed-forward network.

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
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True, dropout=dropout)
        self.attention = nn.MultiheadAttention(
            hidden_size, num_heads, dropout=dropout, batch_first=True
        )
        self.feedforward = nn.Sequential(
            nn.Linear(hidden_size * 2, ffn_hidden_size),
            nn.ReLU(),
            nn.Linear(ffn_hidden_size, input_size),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lstm_output, _ = self.lstm(x)  # (B, T, H)
        attention_output, _ = self.attention(lstm_output, lstm_output, lstm_output)  # (B, T, H)
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


class LSTMAttention(_LSTMSelfAttention):
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
    ) -> None:
        super().__init__(input_size, hidden_size, num_layers, num_heads, dropout, causal)
        self.fc = nn.Linear(hidden_size, output_size or input_size)

    def forward(
        self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        _, attention_output = self._lstm_and_attention(x, key_padding_mask)
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


class LSTMAttentionFFN(_LSTMSelfAttention):
    """Design 3, corrected: LSTM and attention outputs concatenated -> feed-forward, with masks.

    Each step gets both what the LSTM has read so far and what attention gathered from the whole
    sequence: ``ffn([h_t ; attn_t])``.

    Args:
        input_size, hidden_size, num_layers, num_heads, dropout, causal: see the attention block.
        ffn_hidden_size: width of the feed-forward network's hidden layer.
        output_size: features predicted per step (default ``input_size``, as in the article).

    Inputs: ``x (B, T, input_size)``, optional ``key_padding_mask (B, T)``.
    Output: ``(B, T, output_size)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        num_heads: int = 2,
        *,
        ffn_hidden_size: int = 64,
        output_size: int | None = None,
        dropout: float = 0.0,
        causal: bool = False,
    ) -> None:
        super().__init__(input_size, hidden_size, num_layers, num_heads, dropout, causal)
        self.feedforward = nn.Sequential(
            nn.Linear(hidden_size * 2, ffn_hidden_size),
            nn.ReLU(),
            nn.Linear(ffn_hidden_size, output_size or input_size),
        )

    def forward(
        self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        lstm_output, attention_output = self._lstm_and_attention(x, key_padding_mask)
        both = torch.cat((lstm_output, attention_output), dim=-1)  # (B, T, 2H)
        return self.feedforward(both)  # (B, T, output_size)


# --------------------------------------------------------------------------------------------------
# Each module in isolation: the baselines for "combining them ... over either module in isolation"
# --------------------------------------------------------------------------------------------------
def _head(in_features: int, ffn_hidden_size: int, output_size: int) -> nn.Sequential:
    """The feed-forward head every baseline shares with design 3."""
    return nn.Sequential(
        nn.Linear(in_features, ffn_hidden_size),
        nn.ReLU(),
        nn.Linear(ffn_hidden_size, output_size),
    )


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


# --------------------------------------------------------------------------------------------------
# Controls for reading attention weights as importance
# --------------------------------------------------------------------------------------------------
def _attention_modules(model: nn.Module) -> list[nn.MultiheadAttention]:
    found = [m for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    if not found:
        raise ValueError(f"{type(model).__name__} has no nn.MultiheadAttention module")
    for m in found:
        if not m._qkv_same_embed_dim:
            raise ValueError("expected attention modules with one in_proj_weight (kdim = vdim)")
    return found


def with_uniform_attention(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose every ``nn.MultiheadAttention`` weighs all (unmasked) keys equally.

    The query projection (the first ``embed_dim`` rows of ``in_proj_weight`` and ``in_proj_bias``)
    is set to zero, so every score ``q . k`` is 0 and each head's softmax is uniform; values, output
    projection and the rest of the model are the trained ones. ``model`` is untouched.

    This is a post-hoc ablation: a large loss shows that *this* model depends on its weights, a small
    one that it did not rely on them (Jain & Wallace, 2019). Whether focusing is *needed* is a
    question for the rival trained with uniform attention, :func:`freeze_uniform_attention`.
    """
    uniform = copy.deepcopy(model)
    with torch.no_grad():
        for m in _attention_modules(uniform):
            m.in_proj_weight[: m.embed_dim].zero_()
            m.in_proj_bias[: m.embed_dim].zero_()
    return uniform


def freeze_uniform_attention(model: nn.Module) -> nn.Module:
    """Make every ``nn.MultiheadAttention`` of ``model`` uniform *for training*: in place, returned.

    The query projection is set to zero and its gradient is zeroed on every backward pass, so it
    stays zero under Adam (zero gradients give zero updates) and every head weighs all unmasked keys
    equally throughout training; values, output projection and the rest of the model learn as usual.
    This is the rival of Wiegreffe & Pinter (2019): the same model *trained* without the freedom to
    focus. (Swapping uniform weights into a trained model, :func:`with_uniform_attention`, is a
    post-hoc ablation: it shows that this model depends on its weights, not that focusing helps.)
    """
    for m in _attention_modules(model):
        rows = m.embed_dim
        with torch.no_grad():
            m.in_proj_weight[:rows].zero_()
            m.in_proj_bias[:rows].zero_()

        def no_query_gradient(grad: torch.Tensor, rows: int = rows) -> torch.Tensor:
            grad = grad.clone()
            grad[:rows] = 0
            return grad

        m.in_proj_weight.register_hook(no_query_gradient)
        m.in_proj_bias.register_hook(no_query_gradient)
    return model


def without_head(model: nn.Module, head: int) -> nn.Module:
    """A copy of ``model`` with one head of every ``nn.MultiheadAttention`` removed (ablated).

    The columns of ``out_proj.weight`` that read head ``head``'s output are set to zero, so that head
    contributes nothing; the other heads are unchanged. ``model`` is untouched.
    """
    ablated = copy.deepcopy(model)
    with torch.no_grad():
        for m in _attention_modules(ablated):
            if not 0 <= head < m.num_heads:
                raise ValueError(f"head must lie in [0, {m.num_heads - 1}], got {head}")
            d = m.embed_dim // m.num_heads
            m.out_proj.weight[:, head * d : (head + 1) * d].zero_()
    return ablated


def runs_fast_path(model: nn.Module, *inputs: torch.Tensor) -> bool:
    """Whether ``model(*inputs)``, without gradients, runs ``nn.MultiheadAttention``'s fused path.

    In inference PyTorch may skip the Python attention code and call one fused kernel,
    ``torch._native_multi_head_attention``, when every condition of its "fast path" holds: eval
    mode, no autograd, batched self-attention, an even ``num_heads``, ``batch_first=True``, ... This
    counts calls of that kernel for the length of one forward pass (the function is wrapped, then
    restored), so a notebook can measure which settings take it instead of reading the rules.
    """
    original = torch._native_multi_head_attention
    calls: list[int] = []

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    torch._native_multi_head_attention = counted
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        torch._native_multi_head_attention = original
    return bool(calls)


def fused_kernel_calls(run, *inputs: torch.Tensor, grad: bool = False) -> dict[str, int]:
    """Count the calls of PyTorch's fused kernels during ``run(*inputs)``: a cost that is counted.

    Three entry points are wrapped (then restored): ``lstm`` (``torch._VF.lstm``, the whole
    recurrence of ``nn.LSTM`` in one call), ``native MHA`` (``torch._native_multi_head_attention``,
    ``nn.MultiheadAttention``'s inference fast path) and ``SDPA``
    (``torch.nn.functional.scaled_dot_product_attention``, the fused attention of its slow path).
    With ``grad=True`` the call runs with autograd and a backward pass over the output's sum, as a
    training step would; otherwise without gradients, as inference.
    """
    functional = nn.functional
    counts = {"lstm": 0, "native MHA": 0, "SDPA": 0}
    targets = [
        (torch._VF, "lstm", "lstm"),
        (torch, "_native_multi_head_attention", "native MHA"),
        (functional, "scaled_dot_product_attention", "SDPA"),
    ]
    saved = []
    for owner, attr, key in targets:
        original = getattr(owner, attr)

        def counted(*args, _original=original, _key=key, **kwargs):
            counts[_key] += 1
            return _original(*args, **kwargs)

        saved.append((owner, attr, original, attr in vars(owner)))
        setattr(owner, attr, counted)
    try:
        with torch.set_grad_enabled(grad):
            out = run(*inputs)
            out = out[0] if isinstance(out, tuple) else out
            if grad:
                out.sum().backward()
    finally:
        for owner, attr, original, own in saved:
            if own:
                setattr(owner, attr, original)
            else:
                delattr(owner, attr)
    return counts


def _native_mha_flops(query_shape, key_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of ``torch._native_multi_head_attention`` (the fast path), which the counter cannot see
    into: the same four matrix products as the slow path (q, k, v projections; scores; weighted
    values; output projection), ``2 * multiply-adds`` as FlopCounterMode counts them."""
    b, t, e = query_shape
    s = key_shape[1]
    return 2 * (b * t * e * e + 2 * b * s * e * e + 2 * b * t * s * e + b * t * e * e)


_COPY_OPS = ("clone", "copy_", "_to_copy", "contiguous")


def counted_cost(run, *inputs, grad: bool = False) -> dict[str, int]:
    """Count what ``run(*inputs)`` costs: multiply-adds of every matrix product, and elements copied.

    ``multiply-adds`` comes from ``torch.utils.flop_counter.FlopCounterMode`` (its FLOPs / 2), with
    oneDNN's LSTM kernel switched off for the call so that every product of ``nn.LSTM`` is visible
    (the same products either way), and with a formula for the attention's fused fast-path kernel
    (:func:`_native_mha_flops`). ``copied`` counts the elements written by copy operations
    (``clone``, ``copy_``, ``contiguous``, ...: transposes made contiguous); a fused kernel's own
    internal rearrangements are invisible to it. With ``grad=True`` the call runs with autograd and
    a backward pass over the output's sum, as a training step would; otherwise without gradients.
    """
    import warnings

    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    class CopyCounter(TorchDispatchMode):
        copied = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func.overloadpacket.__name__ in _COPY_OPS and isinstance(out, torch.Tensor):
                self.copied += out.numel()
            return out

    flops = FlopCounterMode(
        display=False,
        custom_mapping={torch.ops.aten._native_multi_head_attention: _native_mha_flops},
    )
    copies = CopyCounter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the oneDNN switch warns about Intel GPUs
        with torch.backends.mkldnn.flags(enabled=False), flops, copies:
            with torch.set_grad_enabled(grad):
                out = run(*inputs)
                out = out[0] if isinstance(out, tuple) else out
                out = out.data if isinstance(out, nn.utils.rnn.PackedSequence) else out
                if grad:
                    out.sum().backward()
    return {"multiply-adds": flops.get_total_flops() // 2, "copied": copies.copied}


# --------------------------------------------------------------------------------------------------
# Tasks that suit each design (seeded, made on the fly)
# --------------------------------------------------------------------------------------------------
def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def marked_value_task(
    n: int,
    seq_len: int,
    *,
    min_len: int | None = None,
    target: str = "marked",
    noise: float = 0.0,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every step must output the value of the one marked step (design 1).

    Each step carries ``(value, marker)``: values from U(0, 1), exactly one real step marked. The
    target of *every* step, those before the marker included, is the marked value, so a forward LSTM
    alone cannot solve it; attention can (each query should look at the marked key). Sequences
    shorter than ``seq_len`` are zero-padded at the end and their padded targets are NaN (leave them
    out of the loss, see :func:`masked_mse`).

    ``target="mean"`` keeps the same inputs but asks every step for the mean of the sequence's real
    values: there every step matters equally (the control task for "attention weighs importance").

    ``noise`` adds Gaussian noise with that standard deviation to each sequence's target (the same
    draw at every step of it): no model can predict it, so the best possible test MSE is
    ``noise ** 2`` and a control task stays clearly off the floor of 0.

    Returns:
        ``x (n, seq_len, 2)``, ``y (n, seq_len)`` and ``lengths (n,)``.
    """
    if n < 1 or seq_len < 2:
        raise ValueError(f"need n >= 1 and seq_len >= 2, got n={n}, seq_len={seq_len}")
    min_len = seq_len if min_len is None else min_len
    if not 1 <= min_len <= seq_len:
        raise ValueError(f"min_len must lie in [1, seq_len={seq_len}], got {min_len}")
    if target not in ("marked", "mean"):
        raise ValueError(f"target must be 'marked' or 'mean', got {target!r}")
    if noise < 0:
        raise ValueError(f"noise is a standard deviation, so >= 0; got {noise}")
    g = _generator(seed)
    lengths = torch.randint(min_len, seq_len + 1, (n,), generator=g)
    values = torch.rand(n, seq_len, generator=g)
    marked = (torch.rand(n, generator=g) * lengths).long()  # uniform over the real steps
    rows = torch.arange(n)
    markers = torch.zeros(n, seq_len)
    markers[rows, marked] = 1.0
    pad = padding_mask(lengths, seq_len)  # (n, T)
    x = torch.stack([values, markers], dim=-1).masked_fill(pad.unsqueeze(-1), 0.0)  # (n, T, 2)
    if target == "mean":
        wanted = x[..., 0].sum(dim=1) / lengths  # (n,) mean of the real values
    else:
        wanted = values[rows, marked]  # (n,)
    if noise:
        wanted = wanted + noise * torch.randn(n, generator=g)  # drawn last: noise=0 changes nothing
    y = wanted.unsqueeze(1).expand(n, seq_len).clone()  # (n, T)
    y[pad] = float("nan")
    return x, y, lengths


def marked_token_task(
    n: int,
    seq_len: int,
    vocab_size: int,
    *,
    offset: int = 1,
    at_start: bool = False,
    label_noise: float = 0.0,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every step must name the token ``offset`` steps after the one marked step (design 3).

    Each step carries a one-hot token and a marker bit; exactly one step is marked. The target of
    every step is the token at ``marked + offset``. With ``offset=1`` neither module alone can do it,
    by construction: a forward LSTM at a step before ``marked + 1`` has not read that token yet, and
    attention without positions can find the marked step but not the one after it (nothing marks it).
    An LSTM marks it (its state at ``marked + 1`` knows the step before was marked) and attention
    then fetches it: the combination can.

    ``at_start=True`` is the control task: the marker is always on step 0 and the target is the
    marked token itself, which either module alone can do (the LSTM remembers step 0, attention looks
    at the marked key).

    ``label_noise`` replaces each sequence's target, with that probability, by a token drawn
    uniformly (possibly the right one). No model can predict the replacement, so the best possible
    accuracy is ``1 - label_noise * (vocab_size - 1) / vocab_size`` (the Bayes rate): a control task
    with noise keeps every model clearly below 1.

    Returns:
        ``x (n, seq_len, vocab_size + 1)``, class targets ``y (n, seq_len)`` (int64, the same at every
        step of a sequence) and the token ids ``(n, seq_len)``.
    """
    if n < 1 or vocab_size < 2 or not 0 <= offset < seq_len:
        raise ValueError(
            f"need n >= 1, vocab_size >= 2 and 0 <= offset < seq_len, got n={n}, "
            f"vocab_size={vocab_size}, offset={offset}, seq_len={seq_len}"
        )
    if not 0 <= label_noise <= 1:
        raise ValueError(f"label_noise is a probability in [0, 1], got {label_noise}")
    g = _generator(seed)
    tokens = torch.randint(0, vocab_size, (n, seq_len), generator=g)
    rows = torch.arange(n)
    if at_start:
        marked, offset = torch.zeros(n, dtype=torch.long), 0
    else:
        marked = torch.randint(0, seq_len - offset, (n,), generator=g)
    marker = torch.zeros(n, seq_len, 1)
    marker[rows, marked] = 1.0
    x = torch.cat([nn.functional.one_hot(tokens, vocab_size).float(), marker], dim=-1)
    wanted = tokens[rows, marked + offset]  # (n,)
    if label_noise:  # drawn last: label_noise=0 changes nothing
        replaced = torch.rand(n, generator=g) < label_noise
        wanted = torch.where(replaced, torch.randint(0, vocab_size, (n,), generator=g), wanted)
    y = wanted.unsqueeze(1).expand(n, seq_len).clone()  # (n, T)
    return x, y, tokens


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


def next_token_task(
    n: int, seq_len: int, vocab_size: int, *, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token sequences whose next token is random at every other step (design 2).

    The sequence ``s_0 .. s_T`` has ``s_{2k}`` uniform over the vocabulary and
    ``s_{2k+1} = (s_{2k} + 1) mod V``. A model that reads only the past can predict the odd tokens
    exactly but no better than chance the even ones, so its cross-entropy cannot fall below
    :func:`next_token_floor` (``ln V`` on half the targets). A loss far below that floor proves the
    model reads the future.

    Returns:
        ``inputs (n, seq_len)`` = ``s_0 .. s_{T-1}`` and ``targets (n, seq_len)`` = ``s_1 .. s_T``.
    """
    if n < 1 or seq_len < 2 or vocab_size < 2:
        raise ValueError(
            f"need n >= 1, seq_len >= 2, vocab_size >= 2, got {n}, {seq_len}, {vocab_size}"
        )
    g = _generator(seed)
    s = torch.randint(0, vocab_size, (n, seq_len + 1), generator=g)
    n_odd = s[:, 1::2].shape[1]
    s[:, 1::2] = (
        s[:, 0::2][:, :n_odd] + 1
    ) % vocab_size  # each odd token follows from the one before
    return s[:, :-1].clone(), s[:, 1:].clone()


def next_token_floor(seq_len: int, vocab_size: int) -> float:
    """The lowest mean cross-entropy (nats) an honest model can reach on :func:`next_token_task`.

    Targets ``s_1 .. s_T``: the even ones (``T // 2`` of them) are uniform, costing ``ln V`` each;
    the odd ones are determined by the token before them and cost nothing.
    """
    return (seq_len // 2) * math.log(vocab_size) / seq_len


def duplicate_task(
    n: int, seq_len: int, vocab_size: int, *, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Label each token 1 if the same token occurs anywhere else in its sequence (design 3).

    The answer for step ``t`` needs the token at ``t`` (what the LSTM carries) and a look at every
    other step, before and after ``t`` (what attention gathers): the concatenation design fits.

    Returns:
        one-hot ``x (n, seq_len, vocab_size)``, labels ``y (n, seq_len)`` (float 0/1) and the token
        ids ``(n, seq_len)`` (for plot labels).
    """
    if n < 1 or seq_len < 2 or vocab_size < 2:
        raise ValueError(
            f"need n >= 1, seq_len >= 2, vocab_size >= 2, got {n}, {seq_len}, {vocab_size}"
        )
    tokens = torch.randint(0, vocab_size, (n, seq_len), generator=_generator(seed))
    same = tokens.unsqueeze(2) == tokens.unsqueeze(1)  # (n, T, T)
    y = ((same.sum(dim=2) - 1) > 0).float()  # (n, T): another step holds the same token
    x = nn.functional.one_hot(tokens, vocab_size).float()  # (n, T, V)
    return x, y, tokens


# --------------------------------------------------------------------------------------------------
# Reading attention weights
# --------------------------------------------------------------------------------------------------
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
