"""Record the per-head attention weights of every ``nn.MultiheadAttention`` inside any model.

PyTorch hides per-head weights in three ways: ``nn.MultiheadAttention`` averages the heads unless it is
called with ``average_attn_weights=False``; callers such as ``nn.TransformerEncoderLayer`` pass
``need_weights=False``, so no weights are computed at all; and in eval mode a fused "fast path" may
skip the Python module entirely. :func:`capture_attention` undoes all three for the length of a
``with`` block, and nothing else::

    with capture_attention(model) as cap:
        logits = model(x)             # the model runs (and returns) exactly what it did before
    cap.names                         # ['attention']  (module names, as in model.named_modules())
    cap["attention"].shape            # (N, num_heads, L, S): one matrix per example and head

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
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["AttentionCall", "AttentionCapture", "capture_attention", "attention_modules"]


@dataclass(frozen=True)
class AttentionCall:
    """One call of one attention module during a captured forward pass.

    Attributes:
        name: the module's name in ``model.named_modules()`` (``"layers.0.self_attn"``).
        weights: per-head attention, detached, shape ``(N, num_heads, L, S)`` (an unbatched call
            gets ``N = 1``): ``weights[n, h, i, j]`` is how much query ``i`` of example ``n`` takes
            from key ``j`` in head ``h``. Each row sums to 1 (rows of fully masked queries are NaN).
        key_padding_mask: the call's key padding mask as booleans ``(N, S)``, True at padding (None
            when the caller passed none). Plots use it to remove padding.
        batch_first: the module's ``batch_first`` (the weights are batch-first either way).
    """

    name: str
    weights: torch.Tensor
    key_padding_mask: torch.Tensor | None
    batch_first: bool

    @property
    def num_heads(self) -> int:
        return self.weights.shape[1]


@dataclass
class AttentionCapture:
    """What :func:`capture_attention` recorded: every call of every attention module, in order."""

    calls: list[AttentionCall] = field(default_factory=list)
    module_names: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        """Names of the modules that were called, in the order of their first call."""
        return list(dict.fromkeys(call.name for call in self.calls))

    def calls_of(self, name: str) -> list[AttentionCall]:
        """Every call of module ``name`` (a module called twice, e.g. in a loop, has two)."""
        found = [call for call in self.calls if call.name == name]
        if not found:
            watched = ", ".join(repr(n) for n in self.module_names) or "none"
            raise KeyError(
                f"no attention recorded for {name!r}; modules called: {self.names or 'none'}, "
                f"modules watched: {watched}. Did the forward pass run inside the `with` block?"
            )
        return found

    def call(self, name: str, index: int = -1) -> AttentionCall:
        """The ``index``-th call of module ``name`` (default: the last one)."""
        return self.calls_of(name)[index]

    def __getitem__(self, name: str) -> torch.Tensor:
        """Per-head weights ``(N, num_heads, L, S)`` of the last call of module ``name``."""
        return self.call(name).weights

    def __contains__(self, name: object) -> bool:
        return any(call.name == name for call in self.calls)

    def __len__(self) -> int:
        return len(self.calls)

    def clear(self) -> None:
        """Forget what was recorded (e.g. between two forward passes in one ``with`` block)."""
        self.calls.clear()


def attention_modules(model: nn.Module) -> dict[str, nn.MultiheadAttention]:
    """Every ``nn.MultiheadAttention`` (or subclass) inside ``model``, by name, at any depth."""
    found = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention):
            found[name or type(module).__name__] = module
    return found


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
    only: Callable[[str], bool] | list[str] | None = None,
    to_cpu: bool = False,
) -> Iterator[AttentionCapture]:
    """Record per-head weights of every ``nn.MultiheadAttention`` in ``model`` inside a ``with`` block.

    Works on any nesting (``nn.TransformerEncoder``, decoders with cross-attention, your own models),
    whatever the caller passes: ``need_weights=False``, head-averaged weights, ``attn_mask``,
    ``key_padding_mask``, ``is_causal``, ``batch_first`` True or False, batched or not.

    Args:
        model: any module containing at least one ``nn.MultiheadAttention``.
        only: restrict capture to these module names (a list) or names where ``only(name)`` is True.
        to_cpu: move recorded weights to the CPU (frees accelerator memory for long captures).

    Yields:
        An :class:`AttentionCapture`, filled as the model runs.

    Raises:
        ValueError: when ``model`` contains no ``nn.MultiheadAttention``, or ``only`` selects none
            (the message lists the modules found).

    Example:
        >>> layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, batch_first=True).eval()
        >>> with capture_attention(layer) as cap:
        ...     _ = layer(torch.randn(3, 5, 8))
        >>> cap["self_attn"].shape
        torch.Size([3, 2, 5, 5])
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"capture_attention expects an nn.Module, got {type(model).__name__}")
    modules = found = attention_modules(model)
    if only is not None:
        wanted = only if callable(only) else set(only).__contains__
        unknown = [] if callable(only) else sorted(set(only) - set(modules))
        if unknown:
            raise ValueError(
                f"only= names {unknown} are not attention modules; found {list(modules)}"
            )
        modules = {name: m for name, m in modules.items() if wanted(name)}
        if found and not modules:
            raise ValueError(
                f"only= matched none of the {len(found)} attention modules of "
                f"{type(model).__name__}: {list(found)}; pass some of these names, or a "
                "function that returns True for them"
            )
    if not modules:
        raise ValueError(
            f"no nn.MultiheadAttention found in {type(model).__name__}. capture_attention records "
            "torch.nn.MultiheadAttention modules only; for Hugging Face BERT load the model with "
            "attn_implementation='eager' and pass output_attentions=True instead."
        )
    capture = AttentionCapture(module_names=tuple(modules))
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
            capture.calls.append(
                AttentionCall(name, stored, mask, bool(getattr(mod, "batch_first", False)))
            )
            if not need:
                return attn_output, None
            if average:
                return attn_output, weights.mean(dim=-3)  # as PyTorch averages: over the head axis
            return attn_output, weights

        return pre_hook, hook

    fastpath = torch.backends.mha.get_fastpath_enabled()
    try:
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
