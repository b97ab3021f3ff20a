"""What a model runs and what it costs: fused kernels taken, multiply-adds and copies counted.

Costs in this course are counted, never timed (a timing depends on the machine and the load):
:func:`runs_fast_path` and :func:`fused_kernel_calls` say which of PyTorch's fused kernels a call
takes; :func:`counted_cost` and :func:`multiply_adds` count the multiply-adds of its matrix products
(and :func:`counted_cost` the elements it copies), the same on every machine.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

__all__ = ["runs_fast_path", "fused_kernel_calls", "counted_cost", "multiply_adds"]


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


def multiply_adds(run: Callable[[], object], *modules: nn.Module) -> int:
    """Multiply-adds of the matrix products that ``run()`` computes: counted, not timed.

    Linear layers, ``matmul`` and ``bmm`` (BERT's projections, feed-forward and attention) are
    counted by ``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per multiply-add). ``nn.LSTM``'s
    fused kernel is invisible to it (and a packed input runs another path), so a hook on every ``nn.LSTM`` inside ``modules`` adds
    ``4 * hidden * (input + hidden)`` per layer, direction and step it really runs (a packed
    sequence counts its real steps only). Elementwise work (gates, tanh, softmax, the mean) is left
    out: it is small next to the products and the same on both sides of the comparisons made here.

    Returns the count as an int (deterministic: the same on every machine).
    """
    from torch.utils.flop_counter import FlopCounterMode

    counted = {"lstm": 0, "seen_inside": 0, "at_entry": 0}
    flops = FlopCounterMode(display=False)

    def enter(lstm: nn.LSTM, args: tuple) -> None:
        counted["at_entry"] = flops.get_total_flops()
        x = args[0]
        if isinstance(x, PackedSequence):
            steps = x.data.shape[0]  # real steps of every sequence
        elif x.ndim == 3:
            steps = x.shape[0] * x.shape[1]
        else:  # unbatched (L, H_in)
            steps = x.shape[0]
        if lstm.proj_size:
            raise ValueError("multiply_adds does not count LSTMs with proj_size")
        dirs = 2 if lstm.bidirectional else 1
        h = lstm.hidden_size
        for layer in range(lstm.num_layers):
            width = lstm.input_size if layer == 0 else h * dirs
            counted["lstm"] += dirs * steps * 4 * h * (width + h)

    def leave(lstm: nn.LSTM, args: tuple, output: object) -> None:
        # some LSTM paths (packed input) run as visible matmuls: drop them, the formula counts them
        counted["seen_inside"] += flops.get_total_flops() - counted["at_entry"]

    handles = [
        hook
        for module in modules
        for m in module.modules()
        if isinstance(m, nn.LSTM)
        for hook in (m.register_forward_pre_hook(enter), m.register_forward_hook(leave))
    ]
    try:
        with torch.no_grad(), flops:
            run()
    finally:
        for handle in handles:
            handle.remove()
    return (flops.get_total_flops() - counted["seen_inside"]) // 2 + counted["lstm"]
