"""Record the per-head attention weights of every attention module inside any model.

PyTorch hides per-head weights in three ways: ``nn.MultiheadAttention`` averages the heads unless it is
called with ``average_attn_weights=False``; callers such as ``nn.TransformerEncoderLayer`` pass
``need_weights=False``, so no weights are computed at all; and in eval mode a fused "fast path" may
skip the Python module entirely. :func:`capture_attention` undoes all three for the length of a
``with`` block, and nothing else::

    with capture_attention(model) as cap:
        logits = model(x)             # the model runs (and returns) exactly what it did before
    cap.names                         # ['attention']  (module names, as in model.named_modules())
    cap["attention"].weights.shape    # (N, num_heads, L, S): one matrix per example and head
    cap[0], cap.calls("attention")    # the first call recorded; every call of that module

Hand-written attention (no ``nn.MultiheadAttention`` inside) is recorded the same way when its
module calls :func:`expose_attention` in its forward, as the course's own attention modules do.

How it works: a forward pre-hook asks the module for per-head weights (``need_weights=True,
average_attn_weights=False``) and remembers what the caller asked for; a forward hook stores the
per-head weights and hands the caller what it would have got (the head average, or ``None``).
The hooks are removed and the fast-path switch restored on exit; nothing is stored on the modules.
``nn.TransformerEncoder`` in eval mode with a ``src_key_padding_mask`` normally runs its layers on
the real positions only and returns zeros at the padded ones; under capture its layers see every
position, so capture sets the padded positions of the last layer's output to zero, as that path
does: the encoder's output is still what it returns without capture.

Note:
    Outputs equal the uncaptured ones up to float rounding: with weights requested PyTorch computes
    attention with an explicit softmax instead of its fused kernel. In training mode with attention
    dropout the random dropout draws also differ, and the recorded weights are the ones after
    dropout (rows no longer sum to 1); capture in ``model.eval()`` to read what the model attends to.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from .records import Recording, Selection, select_modules

__all__ = [
    "AttentionCall",
    "attention_modules",
    "capture_attention",
    "expose_attention",
    "exposes_attention",
]


@dataclass(frozen=True)
class AttentionCall:
    """One call of one attention module during a captured forward pass.

    Attributes:
        name: the module's name in ``model.named_modules()`` (``"layers.0.self_attn"``; ``""`` when
            the model itself is the attention module).
        call: which call of that module this is, counted from 0 (a decoder calls its attention once
            per output step).
        weights: per-head attention, detached, shape ``(N, num_heads, L, S)`` (an unbatched call
            gets ``N = 1``; a hand-written module that scores one query per call has ``L = 1``):
            ``weights[n, h, i, j]`` is how much query ``i`` of example ``n`` takes from key ``j`` in
            head ``h``. Each row sums to 1 (rows of fully masked queries are NaN).
        key_padding_mask: the call's key padding mask as booleans ``(N, S)``, True at padding (None
            when the caller passed none). Plots use it to remove padding.
        batch_first: the module's ``batch_first`` (the weights are batch-first either way).
        steps: how many calls this record stands for (1; more for calls joined by :meth:`join`).
    """

    name: str
    call: int
    weights: torch.Tensor
    key_padding_mask: torch.Tensor | None
    batch_first: bool
    steps: int = 1

    @property
    def num_heads(self) -> int:
        return self.weights.shape[1]

    @classmethod
    def join(cls, calls: list[AttentionCall]) -> tuple[AttentionCall, str] | None:
        """A decoder loop's calls as one record: call k's one query becomes row k.

        A decoder calls its attention once per output step with **one** query over the same
        source: joined, its 12 calls are one ``(N, heads, 12, S)`` alignment (steps x source).
        Calls join only when each has exactly one query and they share examples, heads, keys and
        padding; other repeated calls (self-attention applied twice, a shared layer) return
        ``None`` and stay separate calls.
        """
        first = calls[0]
        n, heads, _, s = first.weights.shape
        for c in calls:
            if tuple(c.weights.shape) != (n, heads, 1, s):
                return None
            if (c.key_padding_mask is None) != (first.key_padding_mask is None) or (
                c.key_padding_mask is not None
                and not torch.equal(c.key_padding_mask, first.key_padding_mask)
            ):
                return None
        weights = torch.cat([c.weights for c in calls], dim=2)  # (N, heads, calls, S)
        joined = cls(
            first.name,
            calls[-1].call,
            weights,
            first.key_padding_mask,
            first.batch_first,
            steps=len(calls),
        )
        return joined, (
            f"assembled from {len(calls)} calls of one query each over the same {s} keys: row k "
            "is call k (a decoder's step k)"
        )


def exposes_attention(module: nn.Module) -> bool:
    """True for modules :func:`capture_attention` records: ``nn.MultiheadAttention`` and every module
    whose class sets ``exposes_attention = True`` and calls :func:`expose_attention` in its forward."""
    return (
        isinstance(module, nn.MultiheadAttention)
        or getattr(module, "exposes_attention", False) is True
    )


def attention_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Every attention module :func:`capture_attention` records inside ``model``, by name (``""`` =
    the model itself), at any depth: ``nn.MultiheadAttention`` and the hand-written ones that expose
    their weights."""
    return {name: m for name, m in model.named_modules() if exposes_attention(m)}


#: id(module) -> functions that store what the module exposes; empty while nothing records.
_LISTENERS: dict[int, list[Callable[[torch.Tensor, torch.Tensor | None], None]]] = {}


def expose_attention(
    module: nn.Module,
    weights: torch.Tensor | Callable[[], torch.Tensor],
    *,
    mask: torch.Tensor | None = None,
) -> None:
    """Hand a hand-written attention module's weights to any :func:`capture_attention` watching it.

    One line in the module's ``forward`` (and ``exposes_attention = True`` on its class)::

        class MyAttention(nn.Module):
            exposes_attention = True

            def forward(self, query, keys, mask=None):
                weights = torch.softmax(self.score(query, keys), dim=-1)  # (B, S)
                expose_attention(self, weights, mask=mask)
                return weights @ keys, weights

    Costs one dictionary look-up when nothing records: the weights are not copied or detached.

    Args:
        module: the attention module (``self``).
        weights: ``(N, S)`` (one query per example), ``(N, L, S)`` or ``(N, heads, L, S)``; or a
            function returning them, called only while something records (for weights that cost
            something to build, e.g. a fixed pooling's weights expanded to every example).
        mask: ``(N, S)`` bool, True at **real** keys (the course's convention for masks), or None.
    """
    listeners = _LISTENERS.get(id(module))
    if listeners:
        if callable(weights):
            weights = weights()
        for listen in listeners:
            listen(weights, mask)


_SIGNATURES: dict[type, inspect.Signature] = {}


def _signature(module: nn.Module) -> inspect.Signature:
    kind = type(module)
    if kind not in _SIGNATURES:
        _SIGNATURES[kind] = inspect.signature(module.forward)
    return _SIGNATURES[kind]


def _bool_padding_mask(mask: torch.Tensor | None) -> torch.Tensor | None:
    """A key padding mask as booleans, True at padding (float masks: True where -inf)."""
    if mask is None:
        return None
    mask = mask.detach()
    if mask.dtype != torch.bool:
        mask = torch.isneginf(mask)
    return mask if mask.dim() == 2 else mask.unsqueeze(0)  # unbatched (S,) -> (1, S)


@contextlib.contextmanager
def capture_attention(
    model: nn.Module,
    *,
    only: Selection = None,
    to_cpu: bool = False,
) -> Iterator[Recording[AttentionCall]]:
    """Record per-head weights of every attention module in ``model`` inside a ``with`` block.

    Records every ``nn.MultiheadAttention`` at any nesting (``nn.TransformerEncoder``, decoders with
    cross-attention, your own models), whatever the caller passes: ``need_weights=False``,
    head-averaged weights, ``attn_mask``, ``key_padding_mask``, ``is_causal``, ``batch_first`` True
    or False, batched or not; and every hand-written attention module that exposes its weights with
    :func:`expose_attention` (the course's ``BahdanauAttention``, ``AdditiveAttentionPooling``, ...).

    Args:
        model: any module containing at least one attention module.
        only: restrict capture to these module names (a list) or names where ``only(name)`` is True.
        to_cpu: move recorded weights to the CPU (frees accelerator memory for long captures).

    Yields:
        A :class:`~course_utils.records.Recording` of :class:`AttentionCall`, one per call, filled as
        the model runs: ``cap["self_attn"]`` is the last call of that module, ``cap[0]`` the first
        call recorded, ``cap.calls(name)`` all calls of a module, ``cap.joined(name)`` a decoder's
        step-wise calls as one steps x source record.

    Raises:
        ValueError: when ``model`` contains no attention module, or ``only`` selects none
            (the message lists the modules found).

    Example:
        >>> layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, batch_first=True).eval()
        >>> with capture_attention(layer) as cap:
        ...     _ = layer(torch.randn(3, 5, 8))
        >>> cap["self_attn"].weights.shape
        torch.Size([3, 2, 5, 5])
    """
    modules = select_modules(
        model,
        exposes_attention,
        only,
        recorder="capture_attention",
        what="attention module",
        hint=(
            "capture_attention records torch.nn.MultiheadAttention and modules that call "
            "course_utils.capture.expose_attention; for a Hugging Face transformer use "
            "course_utils.transformer_attention.capture_transformer_attention."
        ),
    )
    capture: Recording[AttentionCall] = Recording("attention", tuple(modules))
    hand_written = {n: m for n, m in modules.items() if not isinstance(m, nn.MultiheadAttention)}
    modules = {n: m for n, m in modules.items() if isinstance(m, nn.MultiheadAttention)}
    # What each caller asked for, per module, as a stack (a module may be re-entered).
    requests: dict[int, list[tuple[bool, bool, torch.Tensor | None]]] = {
        id(m): [] for m in modules.values()
    }
    handles = []

    def make_hooks(name: str, module: nn.MultiheadAttention):
        signature = _signature(module)

        def pre_hook(mod, args, kwargs):
            bound = signature.bind(*args, **kwargs)
            arguments = bound.arguments
            need = bool(arguments.get("need_weights", True))
            average = bool(arguments.get("average_attn_weights", True))
            mask = _bool_padding_mask(arguments.get("key_padding_mask"))
            requests[id(mod)].append((need, average, mask))
            arguments["need_weights"] = True
            arguments["average_attn_weights"] = False
            return bound.args, bound.kwargs

        def hook(mod, args, kwargs, output):
            need, average, mask = requests[id(mod)].pop()
            if output is None:  # the forward raised; always_call=True still pops the request
                return None
            attn_output, weights = output[0], output[1]
            if weights is None:  # another tool reduced them already: pass through untouched
                return None
            stored = weights.detach()
            stored = stored.unsqueeze(0) if stored.dim() == 3 else stored  # (N, H, L, S)
            if to_cpu:
                stored = stored.cpu()
            capture.records.append(
                AttentionCall(
                    name,
                    capture.next_call(name),
                    stored,
                    mask,
                    bool(getattr(mod, "batch_first", False)),
                )
            )
            if not need:
                return attn_output, None
            if average:
                return attn_output, weights.mean(dim=-3)  # as PyTorch averages: over the head axis
            return attn_output, weights

        return pre_hook, hook

    def listener(name: str) -> Callable[[torch.Tensor, torch.Tensor | None], None]:
        def listen(weights: torch.Tensor, mask: torch.Tensor | None) -> None:
            stored = weights.detach()
            if stored.dim() == 2:  # (N, S): one query per example
                stored = stored[:, None, None, :]
            elif stored.dim() == 3:  # (N, L, S): one head
                stored = stored.unsqueeze(1)
            elif stored.dim() != 4:
                raise ValueError(
                    f"expose_attention({name!r}): weights must be (N, S), (N, L, S) or "
                    f"(N, heads, L, S), got shape {tuple(weights.shape)}"
                )
            padding = None if mask is None else ~mask.detach().to(torch.bool)
            if to_cpu:
                stored = stored.cpu()
            capture.records.append(
                AttentionCall(name, capture.next_call(name), stored, padding, True)
            )

        return listen

    listening: list[tuple[int, Callable]] = []
    fastpath = torch.backends.mha.get_fastpath_enabled()
    try:
        for name, module in hand_written.items():
            listen = listener(name)
            _LISTENERS.setdefault(id(module), []).append(listen)
            listening.append((id(module), listen))
        for name, module in modules.items():
            pre_hook, hook = make_hooks(name, module)
            handles.append(module.register_forward_pre_hook(pre_hook, with_kwargs=True))
            # prepend: a capture opened later (nested) sees the weights before an outer one reduces them
            handles.append(
                module.register_forward_hook(hook, with_kwargs=True, prepend=True, always_call=True)
            )
        for encoder in model.modules():
            if isinstance(encoder, nn.TransformerEncoder) and len(encoder.layers):
                handles.extend(_keep_nested_zeros(encoder, fastpath))
        # The fused paths of MultiheadAttention and TransformerEncoderLayer never call the hooks.
        torch.backends.mha.set_fastpath_enabled(False)
        yield capture
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for handle in handles:
            handle.remove()
        for key, listen in listening:
            _LISTENERS[key].remove(listen)
            if not _LISTENERS[key]:
                del _LISTENERS[key]


def _nested_padding(
    encoder: nn.TransformerEncoder, args: tuple, kwargs: dict, fastpath: bool
) -> torch.Tensor | None:
    """Where an uncaptured call of ``encoder`` returns zeros: its padding ``(B, T)``, else ``None``.

    In eval mode with a ``src_key_padding_mask``, ``nn.TransformerEncoder`` runs its layers on a
    nested tensor of the real positions only and pads the result with zeros (its "sparsity fast
    path"). Capture switches fast paths off, so the layers compute the padded positions too. This
    mirrors the conditions under which ``TransformerEncoder.forward`` (PyTorch 2.x) takes that path.
    """
    bound = _signature(encoder).bind(*args, **kwargs).arguments
    src, pad, mask = bound.get("src"), bound.get("src_key_padding_mask"), bound.get("mask")
    first = encoder.layers[0]
    devices = ("cpu", "cuda", "xpu", torch._C._get_privateuse1_backend_name())
    if not (
        fastpath
        and getattr(encoder, "use_nested_tensor", False)  # implies batch_first
        and not first.training
        and isinstance(src, torch.Tensor)
        and src.dim() == 3
        and not src.is_nested
        and src.device.type in devices
        and isinstance(pad, torch.Tensor)
        and mask is None
        and not torch.is_autocast_enabled()
    ):
        return None
    attn = first.self_attn
    try:
        tensors = [src, attn.in_proj_weight, attn.in_proj_bias]
        for part in (attn.out_proj, first.norm1, first.norm2, first.linear1, first.linear2):
            tensors += [part.weight, part.bias]
    except AttributeError:  # not a standard layer: no fast path
        return None
    tensors = [t for t in tensors if t is not None]
    if torch.overrides.has_torch_function(tensors):
        return None
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return None
    pad = pad.detach() if pad.dtype == torch.bool else pad.detach() != 0  # float masks: 0 = real
    if getattr(encoder, "mask_check", True) and not torch._nested_tensor_from_mask_left_aligned(
        src, ~pad
    ):
        return None
    return pad  # (B, T), True at padding


def _keep_nested_zeros(encoder: nn.TransformerEncoder, fastpath: bool) -> list:
    """Hooks that give ``encoder``'s padded positions the zeros of its uncaptured fast path."""
    pending: list[torch.Tensor | None] = []  # one entry per running call of the encoder

    def pre_hook(mod, args, kwargs):
        pending.append(_nested_padding(mod, args, kwargs, fastpath))

    def last_layer_hook(mod, args, output):
        pad = pending[-1] if pending else None
        if pad is None or not isinstance(output, torch.Tensor):
            return None
        return output.masked_fill(pad.unsqueeze(-1), 0.0)  # (B, T, E); the final norm follows

    def hook(mod, args, kwargs, output):
        pending.pop()

    return [
        encoder.register_forward_pre_hook(pre_hook, with_kwargs=True),
        encoder.layers[-1].register_forward_hook(last_layer_hook),
        encoder.register_forward_hook(hook, with_kwargs=True, always_call=True),
    ]
