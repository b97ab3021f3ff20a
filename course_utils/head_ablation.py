"""Head ablation: the control for reading a BERT head's attention weights as an explanation.

A head that puts much weight on a token need not be what the model relies on: attention weights can
be changed a lot without changing the prediction, and heads are redundant (Jain & Wallace, 2019,
"Attention is not Explanation"; Wiegreffe & Pinter, 2019, "Attention is not not Explanation"). The
direct test is to remove the head and measure what changes. :func:`ablate_heads` zeroes the output of
chosen heads (their slice of the context vector, before the attention's output projection), which is
what ``head_mask`` did in older transformers releases; :func:`ablated_states` encodes texts under that
ablation, bypassing the feature cache of :mod:`course_utils.encoders` (cached features were computed
with every head on).

Layers and heads are numbered from 0, as in ``Encoded.attentions[:, layer, head]``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence

import torch

from .encoders import Encoder

__all__ = ["ablate_heads", "ablated_states"]


def _layers(encoder: Encoder):
    try:
        return encoder.model.encoder.layer
    except AttributeError as exc:
        raise TypeError(
            f"head ablation needs a BERT-style model with .encoder.layer[k].attention.output.dense, "
            f"got {type(encoder.model).__name__}"
        ) from exc


@contextlib.contextmanager
def ablate_heads(encoder: Encoder, heads: Iterable[tuple[int, int]]) -> Iterator[None]:
    """Inside the block, the chosen ``(layer, head)`` pairs contribute nothing to their layer.

    A forward pre-hook on each layer's attention output projection zeroes the head's ``head_dim``
    features of the context vector, so the residual stream receives only the other heads. The hooks
    are removed on exit, also after an error.

    Raises:
        ValueError: a layer or head index out of range.
    """
    layers = _layers(encoder)
    width = encoder.hidden_size // encoder.num_heads
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        if not (0 <= layer < encoder.num_layers and 0 <= head < encoder.num_heads):
            raise ValueError(
                f"(layer, head) = ({layer}, {head}) out of range: layers 0..{encoder.num_layers - 1}, "
                f"heads 0..{encoder.num_heads - 1}"
            )
        by_layer.setdefault(layer, []).append(head)

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


@torch.inference_mode()
def ablated_states(
    encoder: Encoder,
    texts: Sequence[str],
    heads: Iterable[tuple[int, int]] = (),
    *,
    max_length: int = 48,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Last-layer token states of ``texts`` with the chosen heads ablated (no cache).

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
