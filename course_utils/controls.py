"""The controls for reading attention weights as importance: uniform attention and head ablation.

A weight that lands on a step does not show that the model needs that step (Jain & Wallace, 2019,
"Attention is not Explanation"; Wiegreffe & Pinter, 2019, "Attention is not not Explanation"). Each
control here changes the attention and leaves the rest of the model as trained, one way each:

- :func:`with_uniform_attention`: a *copy* whose attention weighs every real key equally (a
  post-hoc ablation: a large loss shows that *this* model depends on its weights);
- :func:`freeze_uniform_attention`: uniform attention *in place, for training* the rival of
  Wiegreffe & Pinter (the same model trained without the freedom to focus). Seq2seq models get the
  same rival from their constructor, ``Seq2SeqAttention(..., uniform_attention=True)``, which also
  takes a faster path;
- :func:`ablate_heads`: a context manager inside which chosen heads contribute nothing, for a BERT
  :class:`~course_utils.encoders.Encoder` or any model with ``nn.MultiheadAttention`` modules;
  :func:`ablated_states` encodes texts under it.

Layers and heads are numbered from 0: BERT's layer ``k`` (as in ``Encoded.attentions[:, layer,
head]``), or the ``k``-th ``nn.MultiheadAttention`` in ``model.modules()`` order.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from .encoders import Encoder

__all__ = [
    "with_uniform_attention",
    "freeze_uniform_attention",
    "ablate_heads",
    "ablated_states",
]


def _attention_modules(model: nn.Module) -> list[nn.MultiheadAttention]:
    found = [m for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    if not found:
        raise ValueError(f"{type(model).__name__} has no nn.MultiheadAttention module")
    for m in found:
        if not m._qkv_same_embed_dim:
            raise ValueError("expected attention modules with one in_proj_weight (kdim = vdim)")
    return found


def _bahdanau_modules(model: nn.Module) -> list[nn.Module]:
    from .seq2seq import BahdanauAttention

    return [m for m in model.modules() if isinstance(m, BahdanauAttention)]


def with_uniform_attention(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose every attention module weighs all (unmasked) keys equally.

    ``nn.MultiheadAttention``: the query projection (the first ``embed_dim`` rows of
    ``in_proj_weight`` and ``in_proj_bias``) is set to zero, so every score ``q . k`` is 0 and each
    head's softmax is uniform. :class:`~course_utils.seq2seq.BahdanauAttention`: the score vector
    ``v`` is set to zero, so every score is 0. Values, output projections and the rest of the model
    are the trained ones. ``model`` is untouched.

    This is a post-hoc ablation: a large loss shows that *this* model depends on its weights, a small
    one that it did not rely on them (Jain & Wallace, 2019). Whether focusing is *needed* is a
    question for the rival trained with uniform attention (:func:`freeze_uniform_attention`, or
    ``Seq2SeqAttention(..., uniform_attention=True)``).
    """
    mha = [m for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    if not mha and not _bahdanau_modules(model):
        kinds = sorted({type(m).__name__ for m in model.modules()})
        raise ValueError(
            f"{type(model).__name__} has no nn.MultiheadAttention and no BahdanauAttention module "
            f"to make uniform (found: {', '.join(kinds)}); pass the model that holds the attention"
        )
    uniform = copy.deepcopy(model)
    with torch.no_grad():
        for m in _attention_modules(uniform) if mha else ():
            m.in_proj_weight[: m.embed_dim].zero_()
            m.in_proj_bias[: m.embed_dim].zero_()
        for m in _bahdanau_modules(uniform):
            m.v.weight.zero_()
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


def _by_layer(heads: Iterable[tuple[int, int]], num_heads: Sequence[int]) -> dict[int, list[int]]:
    """``(layer, head)`` pairs grouped by layer, checked against ``num_heads[layer]``."""
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        if not (0 <= layer < len(num_heads) and 0 <= head < num_heads[layer]):
            most = num_heads[layer] if 0 <= layer < len(num_heads) else max(num_heads)
            raise ValueError(
                f"(layer, head) = ({layer}, {head}) out of range: layers 0..{len(num_heads) - 1}, "
                f"heads 0..{most - 1}"
            )
        if head not in by_layer.setdefault(layer, []):
            by_layer[layer].append(head)
    return by_layer


def _bert_layers(encoder: Encoder):
    try:
        return encoder.model.encoder.layer
    except AttributeError as exc:
        raise TypeError(
            f"head ablation needs a BERT-style model with .encoder.layer[k].attention.output.dense, "
            f"got {type(encoder.model).__name__}"
        ) from exc


@contextlib.contextmanager
def _ablate_bert_heads(encoder: Encoder, heads: Iterable[tuple[int, int]]) -> Iterator[None]:
    # A forward pre-hook on each layer's attention output projection zeroes the head's ``head_dim``
    # features of the context vector, so the residual stream receives only the other heads.
    layers = _bert_layers(encoder)
    width = encoder.hidden_size // encoder.num_heads
    by_layer = _by_layer(heads, [encoder.num_heads] * encoder.num_layers)

    def hook_for(chosen: Sequence[int]):
        def hook(_module, args):
            (context, *rest) = args  # (B, T, H): the heads' outputs side by side
            context = context.clone()
            for h in chosen:
                context[..., h * width : (h + 1) * width] = 0
            return (context, *rest)

        return hook

    handles = [
        layers[layer].attention.output.dense.register_forward_pre_hook(hook_for(chosen))
        for layer, chosen in by_layer.items()
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def _ablate_mha_heads(model: nn.Module, heads: Iterable[tuple[int, int]]) -> Iterator[None]:
    # nn.MultiheadAttention calls its output projection through F.multi_head_attention_forward (or
    # one fused kernel), never out_proj.forward, so a hook would not fire: the head's columns of
    # out_proj.weight are zeroed in place instead, and restored on exit.
    modules = _attention_modules(model)
    by_layer = _by_layer(heads, [m.num_heads for m in modules])
    saved: list[tuple[torch.Tensor, slice, torch.Tensor]] = []
    try:
        with torch.no_grad():
            for layer, chosen in by_layer.items():
                m = modules[layer]
                d = m.embed_dim // m.num_heads
                for h in chosen:
                    cols = slice(h * d, (h + 1) * d)
                    saved.append((m.out_proj.weight, cols, m.out_proj.weight[:, cols].clone()))
                    m.out_proj.weight[:, cols] = 0
        yield
    finally:
        with torch.no_grad():
            for weight, cols, original in reversed(saved):
                weight[:, cols] = original


@contextlib.contextmanager
def ablate_heads(target: Encoder | nn.Module, heads: Iterable[tuple[int, int]]) -> Iterator[None]:
    """Inside the block, the chosen ``(layer, head)`` pairs contribute nothing to their layer.

    The direct test of a head's importance: remove it and measure what changes. A head's output
    (its slice of the context vector, before the attention's output projection) is set to zero,
    which is what ``head_mask`` did in older transformers releases.

    Args:
        target: a BERT :class:`~course_utils.encoders.Encoder` (``layer`` = BERT layer), or any
            ``nn.Module`` holding ``nn.MultiheadAttention`` modules (``layer`` = the ``k``-th of them
            in ``model.modules()`` order; their output projections' head columns are zeroed in place).
        heads: ``(layer, head)`` pairs, 0-based.

    Everything is restored on exit, also after an error.

    Raises:
        ValueError: a layer or head index out of range, or a model without attention modules.

    Example:
        >>> mha = nn.MultiheadAttention(4, 2, batch_first=True)
        >>> with ablate_heads(mha, [(0, 1)]):
        ...     print(mha.out_proj.weight[:, 2:].abs().sum().item())
        0.0
    """
    from .encoders import Encoder

    if isinstance(target, Encoder):
        ablation = _ablate_bert_heads(target, heads)
    elif isinstance(target, nn.Module):
        ablation = _ablate_mha_heads(target, heads)
    else:
        raise TypeError(
            f"ablate_heads needs an encoders.Encoder or an nn.Module with nn.MultiheadAttention "
            f"modules, got {type(target).__name__}"
        )
    with ablation:
        yield


@torch.inference_mode()
def ablated_states(
    encoder: Encoder,
    texts: Sequence[str],
    heads: Iterable[tuple[int, int]] = (),
    *,
    max_length: int = 48,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Last-layer token states of ``texts`` with the chosen heads ablated (no cache).

    Bypasses the feature cache of :mod:`course_utils.encoders` (cached features were computed with
    every head on).

    Returns:
        ``(last_hidden_state (N, T, H) with 0 at padding, attention_mask (N, T))``, padded to the
        longest text, like :func:`course_utils.encoders.encode`.
    """
    if isinstance(texts, str) or not texts:
        raise ValueError("texts must be a non-empty sequence of strings")
    batch = encoder.tokenizer(
        list(texts), truncation=True, max_length=max_length, padding="longest", return_tensors="pt"
    )
    batch = {k: v.to(encoder.device) for k, v in batch.items()}
    with ablate_heads(encoder, heads):
        out = encoder.model(**batch, return_dict=True)
    mask = batch["attention_mask"].cpu()
    states = out.last_hidden_state.float().cpu() * mask.unsqueeze(-1)  # (N, T, H), 0 at padding
    return states, mask
