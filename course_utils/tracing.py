"""Look inside every ``nn.LSTM``: h, c and the i, f, g, o gates of every layer, direction and step.

``nn.LSTM`` returns only the top layer's hidden states and the final ``(h_n, c_n)``. To see how state
flows through a stacked LSTM we need more: every layer's h **and** c, and the four gates, at every
time step. This module records them, for any model that contains LSTMs::

    with trace_lstms(model) as rec:         # every nn.LSTM inside model is traced while inside
        y = model(x)                        # y is exactly what the model returns without tracing
    tr = rec[0]                             # an LSTMTrace, the first LSTM call
    tr = rec["encoder.lstm"]                # the last call of that module
    tr.h.shape                              # (num_layers, num_directions, batch, seq_len, hidden_size)

    tr = trace_lstm(lstm, x, (h0, c0))      # one module on its own

``rec`` is a :class:`~course_utils.records.Recording` (every recorder's one container); a module
called once per step of a loop is joined into one sequence by ``rec.joined(name)``
(:meth:`LSTMTrace.join`). GRUs: :mod:`course_utils.gru_tracing`; ``nn.LSTMCell`` and
``nn.GRUCell`` loops: :mod:`course_utils.cell_tracing`.

How it works (and why it is cheap): while tracing, each ``nn.LSTM`` runs its layers one at a time
with PyTorch's own fused kernel (``torch._VF.lstm``, the function ``nn.LSTM.forward`` calls, with
that layer's weights), so every layer's outputs are the same numbers the module computes. From the
h of every step we know :math:`h_{t-1}` for every step at once, so all gate pre-activations come from
two batched matrix products, :math:`x_t W_{ih}^\\top + b_{ih} + h_{t-1} W_{hh}^\\top + b_{hh}`; the
cell state is then one cheap element-wise scan :math:`c_t = f_t \\odot c_{t-1} + i_t \\odot g_t`.
Dropout between layers (training mode) is drawn by the same call, in the same order, as inside
``nn.LSTM`` on the CPU, so the model's outputs, and its gradients, are those of an untraced run.
(On a GPU, cuDNN draws its own dropout masks inside the kernel; while tracing, ``torch.dropout``
draws them instead: an equally valid sample, and still exactly what the traced layers received.)

What it costs (``benchmarks/bench_tracing.py``): the gate products repeat the kernel's own
multiply-adds, in large, efficient matrix products, so on the CPU a traced forward costs about twice
an untraced one (the products, one sigmoid over every gate, the scan of c).

On a GPU (precision): the layers run on cuDNN, one layer per call, each with its weights in a
buffer of their own (see :func:`_layer_weights`), and c is one log-depth scan instead of a loop.
cuDNN's kernels round differently from the CPU's and from ordinary matrix products: in float32
its h (and so the traced model's output) differs from the CPU by up to about 3e-4, and from an
untraced GPU forward by about as much, and the recomputed c and gates agree with its h
(``h == o * tanh(c)``) to about that tolerance. For exact agreement trace with cuDNN off:
``with course_utils.device.without_cudnn(), trace_lstms(model) as rec: ...``. On the CPU
every number is exact as described above.

Shapes (all tensors of a trace use **batch-first** order, whatever the module's ``batch_first``):

- ``L`` = ``num_layers``, ``D`` = ``num_directions`` (2 if bidirectional), ``B`` = batch,
  ``T`` = seq_len (the longest sequence), ``H`` = ``hidden_size``.
- ``h, c, i, f, g, o``: ``(L, D, B, T, H)``. Direction 1 (backward) is stored at the *input's* time
  positions: ``h[l, 1, b, t]`` is the backward state after reading steps ``t .. lengths[b]-1``.
- ``proj_size = P > 0``: h is the projected state the module returns, ``(L, D, B, T, P)``; c and the
  gates keep ``H`` units, and ``h_cell`` holds the unprojected ``o * tanh(c)`` (``h = h_cell W_hr^T``).
- Padded steps (``t >= lengths[b]`` with packed input) hold **zeros**, as ``pad_packed_sequence``
  returns them; use :meth:`LSTMTrace.mask` or :meth:`LSTMTrace.unpadded` to drop them.
- The tensors are detached, batch-first *views* of time-first buffers (no copies, so tracing stays
  cheap): index and ``reshape`` them freely; call ``.contiguous()`` before ``.view``.

Supported: stacked, bidirectional, ``batch_first`` True or False, unbatched 2-D input, given or
default initial states, dropout between layers (train and eval mode), ``PackedSequence`` input,
``bias=False``, ``proj_size > 0``, any number of calls per module.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import _VF, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from .records import Recording, Selection, select_modules

__all__ = ["LSTMTrace", "LayerTrace", "trace_lstm", "trace_lstms"]


@dataclass(frozen=True, eq=False)
class LayerTrace:
    """One layer and direction of a trace: its states and gates by name (``.h``, ``.f``), each
    ``(B, T, units)``, as listed in the trace's ``states`` and ``gates``."""

    layer: int
    direction: int
    lengths: torch.Tensor
    tensors: dict[str, torch.Tensor]

    def __getattr__(self, name: str) -> torch.Tensor:
        tensors = self.__dict__.get("tensors", {})
        if name in tensors:
            return tensors[name]
        raise AttributeError(f"a layer trace holds {', '.join(tensors)}; got {name!r}")


class _StepTrace:
    """What LSTM and GRU traces share: sizes, masks, one layer, one example, joining a loop's calls.

    A subclass is a frozen dataclass with ``h`` (and its other ``states`` and ``gates``), each
    ``(L, D, B, T, units)``, the initial and final states ``<state>0`` / ``<state>_n`` and ``lengths``.
    """

    states: ClassVar[tuple[str, ...]]
    gates: ClassVar[tuple[str, ...]]
    gate_names: ClassVar[dict[str, str]]
    h: torch.Tensor
    lengths: torch.Tensor
    inputs: tuple[torch.Tensor, ...]

    # sizes, read off h and the gates: (num_layers, num_directions, batch, seq_len, hidden_size)
    num_layers = property(lambda self: self.h.shape[0], doc="L, the number of stacked layers")
    num_directions = property(lambda self: self.h.shape[1], doc="D, 2 if bidirectional else 1")
    batch = property(lambda self: self.h.shape[2], doc="B, sequences in the batch")
    seq_len = property(lambda self: self.h.shape[3], doc="T, the longest sequence's length")
    hidden_size = property(
        lambda self: getattr(self, self.gates[0]).shape[4], doc="H, gate units per layer"
    )

    def _names(self) -> tuple[str, ...]:
        extra = ("h_cell",) if getattr(self, "h_cell", None) is not None else ()
        return (*self.states, *self.gates, *extra)

    def mask(self) -> torch.Tensor:
        """``(B, T)`` bool, True at real (not padded) steps."""
        steps = torch.arange(self.seq_len, device=self.lengths.device)
        return steps.unsqueeze(0) < self.lengths.unsqueeze(1)

    def _check(self, layer: int, direction: int) -> tuple[int, int]:
        if not -self.num_layers <= layer < self.num_layers:
            raise IndexError(f"layer must be in [0, {self.num_layers}), got {layer}")
        if not 0 <= direction < self.num_directions:
            raise IndexError(
                f"direction must be in [0, {self.num_directions}) "
                f"({'0 forward, 1 backward' if self.num_directions == 2 else 'unidirectional'}), "
                f"got {direction}"
            )
        return layer % self.num_layers, direction

    def layer(self, layer: int, direction: int = 0) -> LayerTrace:
        """States and gates of one layer and direction, each ``(B, T, units)``; ``-1`` is the top."""
        layer, direction = self._check(layer, direction)
        parts = {k: getattr(self, k)[layer, direction] for k in self._names()}
        return LayerTrace(layer=layer, direction=direction, lengths=self.lengths, tensors=parts)

    def unpadded(
        self, what: str, example: int, layer: int = -1, direction: int = 0
    ) -> torch.Tensor:
        """One example's ``what`` (a state or a gate) without padding: ``(lengths[b], units)``."""
        if what not in self._names():
            raise ValueError(f"what must be one of {', '.join(self._names())}, got {what!r}")
        if not 0 <= example < self.batch:
            raise IndexError(f"example must be in [0, {self.batch}), got {example}")
        layer, direction = self._check(layer, direction)
        return getattr(self, what)[layer, direction, example, : int(self.lengths[example])]

    def _final(self, what: str) -> torch.Tensor:
        """The last ``what`` of every layer and direction, read off the trace, ``(L, D, B, units)``."""
        values = getattr(self, what)
        rows = torch.arange(self.batch, device=values.device)
        last = (self.lengths - 1).to(values.device)
        ends = [last if d == 0 else torch.zeros_like(last) for d in range(self.num_directions)]
        return torch.stack([values[:, d, rows, t] for d, t in enumerate(ends)], dim=1)

    def output(self) -> torch.Tensor:
        """The module's output rebuilt from the trace: ``(B, T, D * units)``, zeros at padding."""
        top = self.h[-1]  # (D, B, T, H)
        return top.permute(1, 2, 0, 3).reshape(self.batch, self.seq_len, -1)  # (B, T, D*H)

    @classmethod
    def join(cls, calls: list[Any]) -> tuple[Any, str] | None:
        """The calls of one loop as one trace over all their steps, and how they were joined.

        Joined when every call starts from the previous call's final states (same batch and
        sizes, ``torch.equal``), as a decoder's recurrent module called once per output step
        does; ``None`` otherwise, and for packed or variable-length calls or two directions (a
        backward direction does not continue across calls).
        """
        first, last = calls[0], calls[-1]
        if len(calls) < 2 or first.num_directions != 1:
            return None
        for prev, call in zip(calls, calls[1:], strict=False):
            for s in cls.states:
                end, start = getattr(prev, f"{s}_n"), getattr(call, f"{s}0")
                if end.shape != start.shape or not torch.equal(end, start):
                    return None
        if any(bool((c.lengths != c.seq_len).any()) for c in calls):
            return None
        names = first._names()
        joined = {k: torch.cat([getattr(c, k) for c in calls], dim=3) for k in names}
        if len(first.inputs) != len(last.inputs):
            return None
        inputs = tuple(
            torch.cat([c.inputs[n] for c in calls], dim=1) for n in range(len(first.inputs))
        )
        starts = {f"{s}0": getattr(first, f"{s}0") for s in cls.states}
        lengths = sum((c.lengths for c in calls), torch.zeros_like(first.lengths))
        steps = sorted({c.seq_len for c in calls})
        each = str(steps[0]) if len(steps) == 1 else f"{steps[0]}-{steps[-1]}"
        record = dataclasses.replace(last, inputs=inputs, lengths=lengths, **starts, **joined)
        return record, (
            f"assembled from {len(calls)} calls of {each} step(s) each: each call continued "
            "from the previous call's final state"
        )


@dataclass(frozen=True, eq=False)
class LSTMTrace(_StepTrace):
    """Everything one call of an ``nn.LSTM`` computed, per layer, direction and time step.

    Attributes:
        name: the module's qualified name inside the traced model (``""`` for the model itself).
        call: which call of that module this is (0-based).
        h: hidden states, ``(L, D, B, T, P)`` (``P = proj_size or H``); ``h[-1]`` is the output.
        c: cell states, ``(L, D, B, T, H)``; they never leave their layer.
        i, f, g, o: input, forget, candidate (``g``, tanh) and output gates, ``(L, D, B, T, H)``.
        inputs: what each layer actually received, one ``(B, T, input_size_l)`` tensor per layer
            (layer 0: the model's input; layer n > 0: layer n-1's h of both directions,
            concatenated, after the inter-layer dropout in training mode).
        h0, c0: the initial states used, ``(L, D, B, P)`` and ``(L, D, B, H)``.
        h_n, c_n: the final states the module returned, ``(L, D, B, ·)`` (batch in input order).
        lengths: true length of each sequence, ``(B,)`` int64 (all ``T`` unless the input was packed).
        batch_first: the module's setting (the trace itself is batch-first regardless).
        training: whether the module ran in training mode (dropout active between layers).
        h_cell: with ``proj_size > 0``, the unprojected ``o * tanh(c)``, ``(L, D, B, T, H)``
            (``h = h_cell @ W_hr^T``); ``None`` otherwise.

    All tensors are detached (no graph) and padded steps are zero.
    """

    states: ClassVar[tuple[str, ...]] = ("h", "c")
    gates: ClassVar[tuple[str, ...]] = ("i", "f", "g", "o")
    gate_names: ClassVar[dict[str, str]] = {
        "i": "input gate",
        "f": "forget gate",
        "g": "candidate",
        "o": "output gate",
    }

    name: str
    call: int
    h: torch.Tensor
    c: torch.Tensor
    i: torch.Tensor
    f: torch.Tensor
    g: torch.Tensor
    o: torch.Tensor
    inputs: tuple[torch.Tensor, ...]
    h0: torch.Tensor
    c0: torch.Tensor
    h_n: torch.Tensor
    c_n: torch.Tensor
    lengths: torch.Tensor
    batch_first: bool
    training: bool
    h_cell: torch.Tensor | None = None

    @property
    def proj_size(self) -> int:
        """P, the units of h after the projection; 0 without one."""
        return 0 if self.h_cell is None else self.h.shape[4]

    def final_states(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The last h and c of every layer and direction, read off the trace, ``(L, D, B, ·)``.

        Forward direction: step ``lengths[b] - 1``; backward direction: step 0 (it reads right to
        left). Equal to the module's ``(h_n, c_n)`` reshaped to ``(L, D, B, ·)``.
        """
        return self._final("h"), self._final("c")


def _check_supported(module: nn.Module, name: str, kind: type[nn.Module]) -> None:
    if type(module).forward is not kind.forward:
        raise TypeError(
            f"module {name or 'model'!r} is a {type(module).__name__}, a subclass of "
            f"nn.{kind.__name__} with its own forward; tracing runs nn.{kind.__name__}'s "
            "computation and would skip that forward (and change the output). Trace the plain "
            f"nn.{kind.__name__} it wraps, or build the model from an nn.{kind.__name__} "
            "attribute instead of subclassing it."
        )
    if "forward" in vars(module):
        raise RuntimeError(
            f"module {name or 'model'!r} is already being traced (or has a patched forward); "
            "nest no two tracing blocks over the same module"
        )


#: where each kind of recurrent module is traced (the hint when a model has none of one kind)
_HINT = (
    "LSTMs: course_utils.tracing.trace_lstms; GRUs: course_utils.gru_tracing.trace_grus; "
    "plain RNNs: course_utils.gru_tracing.trace_rnns; "
    "nn.LSTMCell / nn.GRUCell loops: course_utils.cell_tracing.trace_cells."
)


@contextlib.contextmanager
def _traced_modules(
    model: nn.Module,
    kind: type[nn.Module],
    only: Selection,
    record: Callable[[Any, str, int, _Layers], Any],
    *,
    recorder: str,
) -> Iterator[Recording]:
    """Run every ``kind`` module of ``model`` (after ``only=``) layer by layer while the block runs,
    and append ``record(module, name, call, layers)`` of each call to the yielded Recording."""
    modules = select_modules(
        model,
        lambda m: isinstance(m, kind),
        only,
        recorder=recorder,
        what=f"nn.{kind.__name__}",
        hint=_HINT,
    )
    for name, module in modules.items():
        _check_supported(module, name, kind)
    rec: Recording = Recording(what=kind.__name__, watched=tuple(modules))

    def traced(module: nn.Module, name: str):
        def forward(input, hx=None):  # noqa: A002 - the name nn.LSTM.forward uses
            output, hidden, layers = _run_layers(module, input, hx)
            with torch.no_grad():  # the trace is data: no graph, nothing added to the gradients
                rec.records.append(record(module, name, rec.next_call(name), layers))
            return output, hidden

        return forward

    try:
        for name, module in modules.items():
            # an instance attribute shadows the class's forward; removed in `finally`
            module.forward = traced(module, name)
        yield rec
    finally:
        for module in modules.values():
            vars(module).pop("forward", None)


@contextlib.contextmanager
def trace_lstms(model: nn.Module, *, only: Selection = None) -> Iterator[Recording]:
    """Trace every ``nn.LSTM`` inside ``model`` (or ``model`` itself) while the block runs.

    Inside the block each LSTM runs layer by layer with PyTorch's fused kernel and records an
    :class:`LSTMTrace` per call into the yielded :class:`~course_utils.records.Recording`; the
    model's outputs and gradients are unchanged. On exit every module is restored.

    Args:
        model: any module; every ``nn.LSTM`` in it (``""``: the model itself) is watched.
        only: module names (or a function of the name) to watch some LSTMs and not others.

    Raises:
        ValueError: ``model`` contains no ``nn.LSTM``, or ``only`` names none of them.
    """
    with _traced_modules(model, nn.LSTM, only, _record_lstm, recorder="trace_lstms") as rec:
        yield rec


def trace_lstm(
    lstm: nn.LSTM,
    x: torch.Tensor | PackedSequence,
    hx: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> LSTMTrace:
    """Run one ``nn.LSTM`` on ``x`` (and optional ``(h0, c0)``) and return its :class:`LSTMTrace`.

    Args:
        lstm: the module.
        x: input as the module takes it: ``(B, T, input_size)`` if ``batch_first`` else
            ``(T, B, input_size)``, ``(T, input_size)`` unbatched, or a ``PackedSequence``.
        hx: optional initial ``(h0, c0)``, each ``(L * D, B, ·)`` as ``nn.LSTM`` takes them.
    """
    return _trace_one(lstm, nn.LSTM, trace_lstms, x, hx)


def _trace_one(module: nn.Module, kind: type[nn.RNNBase], tracer: Callable, *args: Any) -> Any:
    """``module(*args)`` traced by ``tracer`` (``trace_lstms`` or ``trace_grus``): its record."""
    if not isinstance(module, kind):
        name = kind.__name__
        raise TypeError(
            f"{tracer.__name__.removesuffix('s')} expects an nn.{name}, got "
            f"{type(module).__name__}; for a model that contains {name}s use "
            f"`with {tracer.__name__}(model) as rec:`"
        )
    with tracer(module) as rec:
        module(*args)
    return rec[-1]


@dataclass
class _Layers:
    """One traced forward, layer by layer, in the kernel's layout (see :func:`_run_layers`)."""

    inputs: list[torch.Tensor]  # what each layer's kernel received (packed data or (T, B, F))
    outputs: list[torch.Tensor]  # what it returned
    initial: tuple[torch.Tensor, ...]  # the states as the caller gave them, (L*D, B, ·)
    hidden: tuple[torch.Tensor, ...]  # the final states the module returns
    packing: tuple | None  # (batch_sizes, sorted_indices, unsorted_indices) for packed input
    is_batched: bool


def _run_layers(module: nn.RNNBase, input, hx):  # noqa: A002 - nn.RNNBase's name
    """Mirror ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``'s forward layer by layer; (output, hidden, _Layers).

    ``hidden`` is what the module returns (``(h_n, c_n)`` or ``h_n``).
    """
    lstm = isinstance(module, nn.LSTM)
    kind = type(module).__name__
    module._update_flat_weights()
    D = 2 if module.bidirectional else 1
    L, H = module.num_layers, module.hidden_size
    sizes = (module.proj_size or H, H) if lstm else (H,)  # units of each state: h (and c)
    packed = isinstance(input, PackedSequence)
    is_batched = True
    if packed:
        data, batch_sizes, sorted_indices, unsorted_indices = input
        batch = int(batch_sizes[0])
        seq = data
    else:
        if input.dim() not in (2, 3):
            raise ValueError(f"{kind}: Expected input to be 2D or 3D, got {input.dim()}D instead")
        is_batched = input.dim() == 3
        if not is_batched:
            input = input.unsqueeze(0 if module.batch_first else 1)
        batch = input.size(0) if module.batch_first else input.size(1)
        sorted_indices = unsorted_indices = batch_sizes = None
        seq = input.transpose(0, 1) if module.batch_first else input  # (T, B, F), as the kernel
    if hx is None:
        states = tuple(
            torch.zeros(L * D, batch, n, dtype=seq.dtype, device=seq.device) for n in sizes
        )
    else:
        states = tuple(hx) if lstm else (hx,)
        if not packed:
            want = 3 if is_batched else 2
            if any(s.dim() != want for s in states):
                got = ", ".join(f"{s.dim()}-D" for s in states)
                raise RuntimeError(
                    f"For {'batched 3-D' if is_batched else 'unbatched 2-D'} input, the initial "
                    f"states should also be {want}-D but got ({got}) tensors"
                )
            if not is_batched:
                states = tuple(s.unsqueeze(1) for s in states)

    def as_module(s: tuple) -> Any:  # the form nn.LSTM (a tuple) or nn.GRU (a tensor) takes
        return s if lstm else s[0]

    if not packed:
        module.check_forward_args(input, as_module(states), batch_sizes)
    initial = states  # batch in the caller's order, (L*D, B, ·)
    if sorted_indices is not None:
        states = tuple(s.index_select(1, sorted_indices) for s in states)
    dropout = module.dropout if module.training else 0.0
    own_chunk = seq.device.type == "cuda"  # cuDNN: each layer's weights in a buffer of their own
    if lstm:
        kernel = _VF.lstm
    elif isinstance(module, nn.GRU):
        kernel = _VF.gru
    else:  # nn.RNN: h_t = tanh or relu of (W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
        kernel = _VF.rnn_tanh if module.nonlinearity == "tanh" else _VF.rnn_relu

    layer_inputs, layer_outputs, finals = [], [], []
    layer_in = seq
    for layer in range(L):
        w, has_biases = _layer_weights(module, layer, own_chunk)
        state = as_module(tuple(s[layer * D : (layer + 1) * D] for s in states))
        flags = (has_biases, 1, 0.0, module.training, module.bidirectional)  # 1 layer, no dropout
        if packed:
            out, *final = kernel(layer_in, batch_sizes, state, w, *flags)
        else:  # (T, B, F) like the module's own kernel call after it transposes batch_first
            out, *final = kernel(layer_in, state, w, *flags, False)
        layer_inputs.append(layer_in)
        layer_outputs.append(out)
        finals.append(final)
        # the same call, on the same tensor, in the same order as inside nn.LSTM: same mask
        layer_in = torch.dropout(out, dropout, True) if dropout > 0 and layer < L - 1 else out
    hidden = tuple(torch.cat(parts) for parts in zip(*finals, strict=True))  # (L*D, B, ·)
    out = layer_outputs[-1]
    if packed:
        output = PackedSequence(out, batch_sizes, sorted_indices, unsorted_indices)
    else:
        output = out.transpose(0, 1) if module.batch_first else out
        if not is_batched:
            output = output.squeeze(0 if module.batch_first else 1)
            hidden = tuple(s.squeeze(1) for s in hidden)
    if unsorted_indices is not None:
        hidden = tuple(s.index_select(1, unsorted_indices) for s in hidden)
    packing = (batch_sizes, sorted_indices, unsorted_indices) if packed else None
    layers = _Layers(layer_inputs, layer_outputs, initial, hidden, packing, is_batched)
    return output, as_module(hidden), layers


def _layer_weights(module: nn.RNNBase, layer: int, own_chunk: bool) -> tuple[list, bool]:
    """One layer's weights (every direction) for a 1-layer kernel call, and its ``has_biases``.

    ``own_chunk=False`` (CPU): the module's own parameters, as ``nn.LSTM`` passes them.

    ``own_chunk=True`` (CUDA): views of one new buffer holding just this layer, in the order
    ``w_ih, w_hh, b_ih, b_hh[, w_hr]`` per direction, zero biases when ``bias=False`` (so the call
    always has biases). cuDNN reads its weights from a single chunk of memory starting at the
    storage of the first weight. Slices of the module's flat buffer do not start there (layers >
    0: compacted with a warning on every call), and without biases layer 0 passed its check but
    was read with the next layer's weights as biases (wrong numbers). Here every weight cuDNN reads
    is one of ours, at the place it checks, or it compacts a copy (still correct). The buffer is
    one ``torch.cat``, part of the graph, so gradients reach the module's parameters.
    """
    D = 2 if module.bidirectional else 1
    k = len(module._flat_weights) // (module.num_layers * D)  # weights per layer and direction
    own = module._flat_weights[layer * D * k : (layer + 1) * D * k]
    if not own_chunk:
        return own, module.bias
    parts = []
    for d in range(D):
        w_ih, w_hh, *rest = own[d * k : (d + 1) * k]
        biases, rest = (rest[:2], rest[2:]) if module.bias else ([], rest)
        if not biases:
            biases = [w_ih.new_zeros(w_ih.shape[0])] * 2
        parts += [w_ih, w_hh, *biases, *rest]
    flat = torch.cat([part.reshape(-1) for part in parts])
    pieces = flat.split([part.numel() for part in parts])
    return [piece.view_as(part) for piece, part in zip(pieces, parts, strict=True)], True


def _time_first(x: torch.Tensor, packing: tuple | None) -> torch.Tensor:
    """A kernel-layout tensor (packed data or ``(T, B, F)``) as ``(T, B, F)``, zeros at padding.

    Packed data is unpacked to the caller's batch order.
    """
    if packing is None:
        return x
    batch_sizes, sorted_indices, unsorted_indices = packing
    return pad_packed_sequence(PackedSequence(x, batch_sizes, sorted_indices, unsorted_indices))[0]


@dataclass
class _Steps:
    """Every layer's h at every step, laid out so that each layer's gate products read it in place.

    ``states``: ``(L, T + 2, B, D * P)`` time-first, per row ``[h forward | h backward]``. Time
    block ``t + 1`` holds step ``t``; block 0 holds the forward h0 and block ``T + 1`` zeros, so the
    forward h_{t-1} of every step is blocks ``0..T-1`` and the backward h_{t+1} blocks ``2..T+1``,
    one strided matrix each (the backward h0 enters at each sequence's last step, see
    :func:`_add_backward_h0`). ``inputs``: what each layer received, ``(T, B, F_l)`` (layer n > 0
    without dropout: a view of ``states`` of layer n-1, so no copy).
    """

    states: torch.Tensor
    inputs: list[torch.Tensor]
    lengths: torch.Tensor  # (B,) int64, on the device
    h0: torch.Tensor  # (L*D, B, P), the caller's batch order
    T: int
    B: int
    D: int
    P: int

    @property
    def h(self) -> torch.Tensor:
        """``(L, D, B, T, P)``: every layer's h, a view."""
        h = self.states[:, 1 : self.T + 1]  # (L, T, B, D*P)
        return h.unflatten(3, (self.D, self.P)).permute(0, 3, 2, 1, 4)

    def previous(self, layer: int, direction: int) -> torch.Tensor:
        """``(T*B, P)``: h at the step before (forward) or after (backward) each step, row
        ``t*B + b``."""
        T, P = self.T, self.P
        first = 0 if direction == 0 else 2
        cols = slice(direction * P, (direction + 1) * P)
        return self.states[layer, first : first + T, :, cols].flatten(0, 1)

    def layer_input(self, layer: int) -> torch.Tensor:
        """``(T*B, F_l)``: the layer's input at every step, row ``t*B + b``."""
        return self.inputs[layer].flatten(0, 1)

    def last_rows(self) -> torch.Tensor:
        """``(B,)``: row ``t*B + b`` of each sequence's last real step."""
        rows = torch.arange(self.B, device=self.lengths.device)
        return (self.lengths - 1) * self.B + rows


def _steps(layers: _Layers, P: int, D: int) -> _Steps:
    """Lay out one call's layer inputs and outputs as :class:`_Steps` (one copy of each h); the
    kernel's own tensors are then dropped from ``layers``."""
    out0 = _time_first(layers.outputs[0].detach(), layers.packing)
    T, B = out0.shape[:2]
    L = len(layers.outputs)
    dev = out0.device
    states = out0.new_empty(L, T + 2, B, D * P)
    h0 = layers.initial[0].detach().reshape(L * D, B, P)
    states[:, 0, :, :P] = h0[0::D]
    if D == 2:
        states[:, T + 1, :, P:] = 0.0
    for n, out in enumerate(layers.outputs):
        states[n, 1 : T + 1] = out0 if n == 0 else _time_first(out.detach(), layers.packing)
    inputs = [
        states[n - 1, 1 : T + 1]  # no dropout between: the h of layer n-1
        if n > 0 and x is layers.outputs[n - 1]
        else _time_first(x.detach(), layers.packing)  # (T, B, F_l)
        for n, x in enumerate(layers.inputs)
    ]
    if layers.packing is None:
        lengths = torch.full((B,), T, dtype=torch.int64, device=dev)
    else:
        batch_sizes = layers.packing[0]
        lengths = (batch_sizes.unsqueeze(0) > torch.arange(B).unsqueeze(1)).sum(1)
        lengths = lengths.to(dev)  # sorted order -> caller's order
        unsorted = layers.packing[2]
        if unsorted is not None:
            lengths = lengths[unsorted.to(dev)]
    layers.inputs.clear()  # the h's are in `states` now: free the kernel's copies before the gates
    layers.outputs.clear()
    return _Steps(states, inputs, lengths, h0, T, B, D, P)


def _add_backward_h0(z: torch.Tensor, w_hh: torch.Tensor, steps: _Steps, ld: int) -> None:
    """The backward direction's h0 enters at each sequence's last real step: add ``h0 W_hh^T``."""
    z.index_add_(0, steps.last_rows(), steps.h0[ld] @ w_hh)  # (B, G*H)


def _gate_weights(
    module: nn.RNNBase, layer: int, direction: int, scale: torch.Tensor, fold: int
) -> tuple[torch.Tensor, ...]:
    """One layer and direction's weights for the gate products, transposed, columns times ``scale``.

    Returns ``W_ih^T``, the input bias, ``W_hh^T`` and ``b_hh``; the first ``fold`` entries of
    ``b_hh`` are added to the input bias (where the two biases are simply summed), the rest are
    left to the caller (a GRU's n gate).
    """
    sfx = f"_l{layer}" + ("_reverse" if direction else "")
    w_ih = getattr(module, "weight_ih" + sfx).detach()
    w_hh = getattr(module, "weight_hh" + sfx).detach()
    if module.bias:
        b_ih = getattr(module, "bias_ih" + sfx).detach()
        b_hh = getattr(module, "bias_hh" + sfx).detach()
    else:
        b_ih = b_hh = w_ih.new_zeros(w_ih.shape[0])
    bias = b_ih * scale
    bias[:fold] += b_hh[:fold] * scale[:fold]
    return w_ih.T * scale, bias, w_hh.T * scale, b_hh * scale


def _gate_products(
    module: nn.RNNBase, steps: _Steps, n_gates: int, tanh_gate: int, fold: int
) -> tuple[torch.Tensor, list[tuple]]:
    """The input half of every gate pre-activation, and what the recurrent half needs.

    Allocates the time-major gate buffer ``(T, B, L*D, n_gates, H)`` (each step's gates one block
    of memory), writes ``x W_ih^T + b`` into each layer and direction's ``(T*B, G*H)`` block (the
    ``tanh_gate``'s columns doubled: ``tanh(a) = 2 sigmoid(2a) - 1``) and returns the buffer and,
    per layer and direction, ``(ld, block, h_prev, W_hh^T, b_hh)`` (both scaled).
    """
    L, H, D = module.num_layers, module.hidden_size, steps.D
    N = steps.T * steps.B
    pre = steps.states.new_empty(steps.T, steps.B, L * D, n_gates, H)
    scale = torch.ones(n_gates * H, dtype=pre.dtype, device=pre.device)
    scale[tanh_gate * H : (tanh_gate + 1) * H] = 2.0
    blocks = []
    for layer in range(L):
        x = steps.layer_input(layer)  # (T*B, F_l)
        for d in range(D):
            ld = layer * D + d
            w_ih, bias, w_hh, b_hh = _gate_weights(module, layer, d, scale, fold)
            block = pre[:, :, ld].view(N, n_gates * H)  # row t*B + b: step t of sequence b
            block.copy_(bias.expand(N, -1))  # then accumulate: faster than a product into zeros
            block.addmm_(x, w_ih)
            blocks.append((ld, block, steps.previous(layer, d), w_hh, b_hh))
    return pre, blocks


def _batch_first(t: torch.Tensor, L: int, D: int) -> torch.Tensor:
    """``(T, B, L*D, units)`` -> ``(L, D, B, T, units)``, a view."""
    return t.unflatten(2, (L, D)).permute(2, 3, 1, 0, 4)


def _padding(steps: _Steps) -> torch.Tensor:
    """``(T, B, 1, 1)`` bool, True at padded steps (broadcasts over layers and units)."""
    t = torch.arange(steps.T, device=steps.lengths.device).unsqueeze(1)
    return (t >= steps.lengths.unsqueeze(0))[:, :, None, None]


def _record_lstm(lstm: nn.LSTM, name: str, call: int, layers: _Layers) -> LSTMTrace:
    """Build the :class:`LSTMTrace` from each layer's kernel input and output.

    Per layer and direction the pre-activations of all four gates are the bias plus two matrix
    products (``x W_ih^T`` and the shifted h times ``W_hh^T``, both read in place from
    :class:`_Steps`) written straight into one time-major buffer ``(T, B, L*D, 4, H)``; one
    in-place sigmoid serves all gates (g's columns are doubled: ``tanh(a) = 2 sigmoid(2a) - 1``),
    and one scan over time fills c for all layers at once, reading one block of memory per step.
    The trace's tensors are (batch-first) views of these buffers.
    """
    D = 2 if lstm.bidirectional else 1
    L, H = lstm.num_layers, lstm.hidden_size
    P = lstm.proj_size or H
    steps = _steps(layers, P, D)
    T, B = steps.T, steps.B
    c0 = layers.initial[1].detach().reshape(L * D, B, H)
    pre, blocks = _gate_products(lstm, steps, 4, tanh_gate=2, fold=4 * H)  # (T, B, L*D, 4, H)
    for ld, z, h_prev, w_hh, _ in blocks:
        z.addmm_(h_prev, w_hh)
        if ld % D:  # backward direction
            _add_backward_h0(z, w_hh, steps, ld)
    pre.sigmoid_()  # i, f, o; and sigmoid(2a) for g
    pre[:, :, :, 2].mul_(2.0).sub_(1.0)  # g = tanh(a) = 2 sigmoid(2a) - 1
    i, f, g, o = pre.unbind(3)  # each (T, B, L*D, H)
    c = _cell_scan(f, torch.mul(i, g), c0, steps.lengths, D)  # (T, B, L*D, H)
    h_cell = o * c.tanh() if lstm.proj_size else None
    if layers.packing is not None:  # padded steps -> 0 (c, gates; h is zero there already)
        pad = _padding(steps)
        for buffer in (pre, c, h_cell):
            if buffer is not None:
                buffer.view(T, B, L * D, -1).masked_fill_(pad, 0.0)

    return LSTMTrace(
        **_trace_fields(lstm, name, call, steps, layers),
        c=_batch_first(c, L, D),
        i=_batch_first(i, L, D),
        f=_batch_first(f, L, D),
        g=_batch_first(g, L, D),
        o=_batch_first(o, L, D),
        c0=c0.view(L, D, B, H),
        h_cell=None if h_cell is None else _batch_first(h_cell, L, D),
    )


def _trace_fields(
    module: nn.RNNBase, name: str, call: int, steps: _Steps, layers: _Layers
) -> dict[str, Any]:
    """What every sequence trace holds besides its gates (and c): name, call, h, the layers'
    inputs, h0, the final states as returned (``h_n``, and ``c_n`` for an LSTM), lengths, flags."""
    L, D, B = len(steps.inputs), steps.D, steps.B
    finals = zip(("h_n", "c_n"), layers.hidden, strict=False)  # (h_n, c_n) or (h_n,)
    B_n = B if layers.is_batched else 1
    return {
        "name": name,
        "call": call,
        "h": steps.h,
        "inputs": tuple(x.transpose(0, 1) for x in steps.inputs),  # (B, T, F_l) views
        "h0": steps.h0.view(L, D, B, steps.P),
        **{k: s.detach().reshape(L, D, B_n, -1) for k, s in finals},
        "lengths": steps.lengths.cpu(),
        "batch_first": module.batch_first,
        "training": module.training,
    }


def _cell_scan(
    f: torch.Tensor, ig: torch.Tensor, c0: torch.Tensor, lengths: torch.Tensor, D: int
) -> torch.Tensor:
    """``c_t = f_t * c_{t-1} + (i*g)_t`` for every layer and direction in one loop over time.

    Args: ``f`` (a view), ``ig``: ``(T, B, L*D, H)``, overwritten by c; ``c0``: ``(L*D, B, H)``; ``lengths``:
    ``(B,)``. Backward directions (entries ``1::2`` of dim 2) run from ``T - 1`` down to 0 in the
    same loop; at their padded steps ``f = 1, i*g = 0``, so c waits at ``c0`` until each
    sequence's own last step. Returns c, ``(T, B, L*D, H)``.
    """
    if f.device.type != "cpu":  # one kernel per step is slow on a GPU: a log-depth scan
        return _cell_scan_parallel(f, ig, c0, lengths, D)
    T = ig.shape[0]
    c = ig  # filled in place: step t's i*g becomes c_t
    c0 = c0.transpose(0, 1)  # (B, L*D, H)
    # one in-place multiply-add per step, on views unbound once (the loop is dispatch-bound)
    if D == 1:
        prev = c0
        for c_t, f_t in zip(c.unbind(0), f.unbind(0), strict=True):
            prev = c_t.addcmul_(f_t, prev)
        return c
    lengths = lengths.to(ig.device)
    f_back = f[:, :, 1::2]
    if bool((lengths < T).any()):  # padded steps of the backward directions: f = 1, i*g = 0
        pad = (torch.arange(T, device=ig.device).unsqueeze(1) >= lengths)[:, :, None, None]
        f_back = f_back.masked_fill(pad, 1.0)  # (T, B, L, H), a copy
        c[:, :, 1::2].masked_fill_(pad, 0.0)
    forward = zip(c[:, :, 0::2].unbind(0), f[:, :, 0::2].unbind(0), strict=True)
    backward = zip(reversed(c[:, :, 1::2].unbind(0)), reversed(f_back.unbind(0)), strict=True)
    prev_f, prev_b = c0[:, 0::2], c0[:, 1::2]
    for (c_f, f_f), (c_b, f_b) in zip(forward, backward, strict=True):
        prev_f = c_f.addcmul_(f_f, prev_f)
        prev_b = c_b.addcmul_(f_b, prev_b)
    return c


def _cell_scan_parallel(
    f: torch.Tensor, ig: torch.Tensor, c0: torch.Tensor, lengths: torch.Tensor, D: int
) -> torch.Tensor:
    """:func:`_cell_scan` in ``ceil(log2 T)`` rounds of whole-tensor operations (Hillis-Steele).

    Step t maps ``c -> f_t c + (i*g)_t``; composing two steps is again such a map, so after the
    round with offset k each step holds the composition of the ``2k`` steps ending there. Backward
    directions run on time-flipped copies. Same inputs and layout as :func:`_cell_scan`; equal up
    to float rounding (products are grouped differently). Used off the CPU, where a loop of T
    small kernels costs more than these few large ones.
    """
    T = ig.shape[0]
    a = f.clone()  # (T, B, L*D, H): the factor of each step's map
    b = ig  # its offset (ig is overwritten, as in the loop)
    if D == 2:  # backward directions: padded steps are identity maps, then reverse time
        steps = torch.arange(T, device=ig.device).unsqueeze(1)  # (T, 1)
        pad = (steps >= lengths.to(ig.device).unsqueeze(0))[:, :, None, None]  # (T, B, 1, 1)
        a[:, :, 1::2] = a[:, :, 1::2].masked_fill(pad, 1.0).flip(0)
        b[:, :, 1::2] = b[:, :, 1::2].masked_fill(pad, 0.0).flip(0)
    b[0] += a[0] * c0.transpose(0, 1)  # fold c0 into the first map: (B, L*D, H)
    k = 1
    while k < T:
        b[k:] = torch.addcmul(b[k:], a[k:], b[:-k])  # new from old
        if 2 * k < T:
            a[k:] = a[k:] * a[:-k]
        k *= 2
    if D == 2:
        b[:, :, 1::2] = b[:, :, 1::2].flip(0)
    return b
