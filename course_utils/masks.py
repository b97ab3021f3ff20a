"""Every mask of the course, one name per convention: built from lengths, read back, applied.

Two conventions meet in this course, and each name says which one it uses:

- a **mask** is True (or 1) at the *real* steps: Keras' masks and Hugging Face's ``attention_mask``
  (:func:`lengths_to_mask`, :func:`lengths_from_mask`, :func:`masked_softmax`, :func:`masked_mean`);
- a **padding mask** is True at the *padded* steps: PyTorch's ``key_padding_mask`` of
  ``nn.MultiheadAttention`` (:func:`padding_mask`, :func:`lengths_from_padding_mask`).

:func:`causal_mask` is an ``attn_mask`` of ``nn.MultiheadAttention``: True where a query may *not*
look (PyTorch's convention for boolean attention masks). Padding is always at the end.

Shapes: ``B`` batch, ``T`` steps (the padded length).
"""

from __future__ import annotations

import torch

__all__ = [
    "lengths_to_mask",
    "padding_mask",
    "causal_mask",
    "lengths_from_mask",
    "lengths_from_padding_mask",
    "masked_softmax",
    "masked_mean",
]


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


def padding_mask(lengths: torch.Tensor, seq_len: int | None = None) -> torch.Tensor:
    """Boolean ``key_padding_mask`` ``(B, T)``: True at the padded steps ``t >= lengths[b]``.

    Args:
        lengths: real length of each sequence, shape ``(B,)``.
        seq_len: padded length ``T`` (default: the longest length).

    Example:
        >>> padding_mask(torch.tensor([1, 3]), 4)
        tensor([[False,  True,  True,  True],
                [False, False, False,  True]])
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


def lengths_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Real tokens per row of an ``(N, T)`` attention mask (1 = real), as int64 on the CPU.

    The mask must be right-padded (ones, then zeros), as BERT tokenizers make it. The CPU is where
    ``pack_padded_sequence`` wants its lengths.

    Example:
        >>> lengths_from_mask(torch.tensor([[1, 1, 0], [1, 1, 1]]))
        tensor([2, 3])
    """
    lengths = mask.long().sum(dim=1)
    if int(lengths.min()) < 1:
        raise ValueError("every row of the attention mask needs at least one real token (1)")
    steps = torch.arange(mask.shape[1], device=mask.device)
    if not torch.equal(mask.bool(), steps.unsqueeze(0) < lengths.unsqueeze(1)):
        raise ValueError("the attention mask must be right-padded: ones first, then zeros")
    return lengths.cpu()


def lengths_from_padding_mask(padding_mask: torch.Tensor) -> torch.Tensor:
    """Real lengths ``(N,)`` from a boolean key padding mask ``(N, S)`` (True at padding).

    The lengths stay on the mask's device; ``.tolist()`` gives Python ints.

    Example:
        >>> lengths_from_padding_mask(torch.tensor([[False, False, True], [False, False, False]]))
        tensor([2, 3])
    """
    mask = torch.as_tensor(padding_mask).bool()
    if mask.ndim != 2:
        raise ValueError(
            f"key_padding_mask must be (N, S), True at padding, got shape {tuple(mask.shape)}"
        )
    return (~mask).sum(dim=1)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax over the time axis (last) of ``scores (B, T)`` with masked steps at exactly 0.

    ``mask`` is True on the real steps. Masked steps get a score of ``-inf`` before the softmax, so
    the real steps' weights still sum to 1. A row with no real step has no meaningful softmax and
    raises ``ValueError``.

    Example:
        >>> masked_softmax(torch.zeros(1, 3), torch.tensor([[True, True, False]]))
        tensor([[0.5000, 0.5000, 0.0000]])
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


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the real tokens: ``sum_t m_t x_t / sum_t m_t``; ``mask=None`` averages every step.

    ``mask`` is 1 (True) on the real tokens. Shape: ``x (N, T, H)``, ``mask (N, T)`` -> ``(N, H)``.
    """
    if mask is None:
        return x.mean(dim=1)
    if mask.shape != x.shape[:2]:
        raise ValueError(f"expected mask of shape {tuple(x.shape[:2])}, got {tuple(mask.shape)}")
    m = mask.to(x.dtype).unsqueeze(-1)  # (N, T, 1)
    return (x * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)
