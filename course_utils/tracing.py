"""Look inside every ``nn.LSTM``: h, c and the i, f, g, o gates of every layer, direction and step.

``nn.LSTM`` returns only the top layer's hidden states and the final ``(h_n, c_n)``. To see how state
flows through a stacked LSTM we need more: every layer's h **and** c, and the four gates, at every
time step. This module records them, for any model that contains LSTMs::

    with trace_lstms(model) as tracer:      # every nn.LSTM inside model is traced while inside
        y = model(x)                        # y is exactly what the model returns without tracing
    tr = tracer[0]                          # an LSTMTrace, the first LSTM call
    tr.h.shape                              # (num_layers, num_directions, batch, seq_len, hidden_size)

    tr = trace_lstm(lstm, x, (h0, c0))      # one module on its own

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

On a GPU (precision): the layers run on cuDNN, one layer per call, each with its weights in a
buffer of their own (see :func:`_layer_weights`), and c is one log-depth scan instead of a loop.
cuDNN's kernels round differently from the CPU's and from ordinary matrix products: in float32
its h (and so the traced model's output) differs from the CPU by up to about 3e-4, and from an
untraced GPU forward by about as much, and the recomputed c and gates agree with its h
(``h == o * tanh(c)``) to about that tolerance. For exact agreement trace with cuDNN off:
``with course_utils.device.without_cudnn(), trace_lstms(model) as tracer: ...``. On the CPU
every number is exact as described above.

Shapes (all tensors of a trace use **batch-first** order, whatever the module's ``batch_first``):

- ``L`` = ``num_layers``, ``D`` = ``num_directions`` (2 if bidirectional), ``B`` = batch,
  ``T`` = seq_len (the longest sequence), ``H`` = ``hidden_size``.
- ``h, c, i, f, g, o``: ``(L, D, B, T, H)``. Direction 1 (backward) is stored at the *input's* time
  positions: ``h[l, 1, b, t]`` is the backward state after reading steps ``t .. lengths[b]-1``.
- Padded steps (``t >= lengths[b]`` with packed input) hold **zeros**, as ``pad_packed_sequence``
  returns them; use :meth:`LSTMTrace.mask` or :meth:`LSTMTrace.unpadded` to drop them.
- The tensors are detached, batch-first *views* of time-first buffers (no copies, so tracing stays
  cheap): index and ``reshape`` them freely; call ``.contiguous()`` before ``.view``.

Supported: stacked, bidirectional, ``batch_first`` True or False, unbatched 2-D input, given or
default initial states, dropout between layers (train and eval mode), ``PackedSequence`` input,
``bias=False``, any number of calls per module. Not supported (a clear error): ``proj_size > 0``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import _VF, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

__all__ = ["LSTMTrace", "LSTMTracer", "LayerTrace", "trace_lstm", "trace_lstms"]

GATES = ("i", "f", "g", "o")


@dataclass(frozen=True)
class LayerTrace:
    """One layer and direction of an :class:`LSTMTrace`; every tensor is ``(B, T, H)``."""

    layer: int
    direction: int
    h: torch.Tensor
    c: torch.Tensor
    i: torch.Tensor
    f: torch.Tensor
    g: torch.Tensor
    o: torch.Tensor
    lengths: torch.Tensor


@dataclass(frozen=True, eq=False)
class LSTMTrace:
    """Everything one call of an ``nn.LSTM`` computed, per layer, direction and time step.

    Attributes:
        name: the module's qualified name inside the traced model (``""`` for the model itself).
        h: hidden states, ``(L, D, B, T, H)``; ``h[-1]`` is what ``nn.LSTM`` outputs.
        c: cell states, ``(L, D, B, T, H)``; they never leave their layer.
        i, f, g, o: input, forget, candidate (``g``, tanh) and output gates, ``(L, D, B, T, H)``.
        inputs: what each layer actually received, one ``(B, T, input_size_l)`` tensor per layer
            (layer 0: the model's input; layer n > 0: layer n-1's h of both directions,
            concatenated, after the inter-layer dropout in training mode).
        h0, c0: the initial states used, ``(L, D, B, H)``.
        h_n, c_n: the final states the module returned, ``(L, D, B, H)`` (batch in input order).
        lengths: true length of each sequence, ``(B,)`` int64 (all ``T`` unless the input was packed).
        batch_first: the module's setting (the trace itself is batch-first regardless).
        training: whether the module ran in training mode (dropout active between layers).

    All tensors are detached (no graph) and padded steps are zero.
    """

    name: str
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

    # sizes, read off h: (num_layers, num_directions, batch, seq_len, hidden_size)
    num_layers = property(lambda self: self.h.shape[0], doc="L, the number of stacked layers")
    num_directions = property(lambda self: self.h.shape[1], doc="D, 2 if bidirectional else 1")
    batch = property(lambda self: self.h.shape[2], doc="B, sequences in the batch")
    seq_len = property(lambda self: self.h.shape[3], doc="T, the longest sequence's length")
    hidden_size = property(lambda self: self.h.shape[4], doc="H, units per layer and direction")

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
        """h, c and gates of one layer and direction, each ``(B, T, H)``; ``layer=-1`` is the top."""
        layer, direction = self._check(layer, direction)
        parts = {k: getattr(self, k)[layer, direction] for k in ("h", "c", *GATES)}
        return LayerTrace(layer=layer, direction=direction, lengths=self.lengths, **parts)

    def unpadded(
        self, what: str, example: int, layer: int = -1, direction: int = 0
    ) -> torch.Tensor:
        """One example's ``what`` (``"h"``, ``"c"`` or a gate) without padding: ``(lengths[b], H)``."""
        if what not in ("h", "c", *GATES):
            raise ValueError(f"what must be one of h, c, i, f, g, o, got {what!r}")
        if not 0 <= example < self.batch:
            raise IndexError(f"example must be in [0, {self.batch}), got {example}")
        layer, direction = self._check(layer, direction)
        return getattr(self, what)[layer, direction, example, : int(self.lengths[example])]

    def final_states(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The last h and c of every layer and direction, read off the trace, ``(L, D, B, H)``.

        Forward direction: step ``lengths[b] - 1``; backward direction: step 0 (it reads right to
        left). Equal to the module's ``(h_n, c_n)`` reshaped to ``(L, D, B, H)``.
        """
        rows = torch.arange(self.batch, device=self.h.device)
        last = (self.lengths - 1).to(self.h.device)
        hs, cs = [], []
        for d in range(self.num_directions):
            t = last if d == 0 else torch.zeros_like(last)
            hs.append(self.h[:, d, rows, t])  # (L, B, H)
            cs.append(self.c[:, d, rows, t])
        return torch.stack(hs, dim=1), torch.stack(cs, dim=1)

    def output(self) -> torch.Tensor:
        """The module's output rebuilt from the trace: ``(B, T, D * H)``, zeros at padded steps."""
        top = self.h[-1]  # (D, B, T, H)
        return top.permute(1, 2, 0, 3).reshape(self.batch, self.seq_len, -1)  # (B, T, D*H)


@dataclass
class LSTMTracer:
    """The traces recorded inside one ``with trace_lstms(model) as tracer:`` block.

    ``tracer[k]`` is the k-th LSTM call; ``tracer["encoder.lstm"]`` the latest call of that module.
    """

    names: dict[nn.LSTM, str]
    traces: list[LSTMTrace] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.traces)

    def __iter__(self) -> Iterator[LSTMTrace]:
        return iter(self.traces)

    def __getitem__(self, key: int | str) -> LSTMTrace:
        if isinstance(key, str):
            found = [t for t in self.traces if t.name == key]
            if not found:
                raise KeyError(
                    f"no trace of an LSTM named {key!r}; recorded: {sorted({t.name for t in self})}"
                    " (did the model call it inside the with-block?)"
                )
            return found[-1]
        if not self.traces:
            raise IndexError(
                "nothing was traced: call the model inside the `with trace_lstms(...)` block"
            )
        return self.traces[key]


def _check_supported(lstm: nn.LSTM, name: str) -> None:
    if lstm.proj_size > 0:
        raise ValueError(
            f"tracing does not support nn.LSTM with proj_size > 0 (module {name or 'model'!r} has "
            f"proj_size={lstm.proj_size}): its h is a projection of the gated state, so h and c have "
            "different sizes. Trace a copy built with proj_size=0."
        )
    if type(lstm).forward is not nn.LSTM.forward:
        raise TypeError(
            f"module {name or 'model'!r} is a {type(lstm).__name__}, a subclass of nn.LSTM with "
            "its own forward; tracing runs nn.LSTM's computation and would skip that forward "
            "(and change the output). Trace the plain nn.LSTM it wraps, or build the model "
            "from an nn.LSTM attribute instead of subclassing it."
        )
    if "forward" in vars(lstm):
        raise RuntimeError(
            f"module {name or 'model'!r} is already being traced (or has a patched forward); "
            "nest no trace_lstms blocks over the same model"
        )


@contextlib.contextmanager
def trace_lstms(model: nn.Module) -> Iterator[LSTMTracer]:
    """Trace every ``nn.LSTM`` inside ``model`` (or ``model`` itself) while the block runs.

    Inside the block each LSTM runs layer by layer with PyTorch's fused kernel and records an
    :class:`LSTMTrace` per call; the model's outputs and gradients are unchanged. On exit every
    module is restored (nothing is left on it).

    Raises:
        ValueError: ``model`` contains no ``nn.LSTM``, or one with ``proj_size > 0``.
    """
    lstms = {m: name for name, m in model.named_modules() if isinstance(m, nn.LSTM)}
    if not lstms:
        raise ValueError(
            f"{type(model).__name__} contains no nn.LSTM to trace (GRU and LSTMCell are not traced)"
        )
    for lstm, name in lstms.items():
        _check_supported(lstm, name)
    tracer = LSTMTracer(names=lstms)
    try:
        for lstm, name in lstms.items():
            # an instance attribute shadows nn.LSTM.forward; removed in `finally`
            lstm.forward = _traced_forward(lstm, name, tracer.traces)
        yield tracer
    finally:
        for lstm in lstms:
            vars(lstm).pop("forward", None)


def trace_lstm(
    lstm: nn.LSTM,
    x: torch.Tensor | PackedSequence,
    hx: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> LSTMTrace:
    """Run one ``nn.LSTM`` on ``x`` (and optional ``(h0, c0)``) and return its :class:`LSTMTrace`.

    Args:
        lstm: the module (``proj_size`` must be 0).
        x: input as the module takes it: ``(B, T, input_size)`` if ``batch_first`` else
            ``(T, B, input_size)``, ``(T, input_size)`` unbatched, or a ``PackedSequence``.
        hx: optional initial ``(h0, c0)``, each ``(L * D, B, H)`` as ``nn.LSTM`` takes them.
    """
    if not isinstance(lstm, nn.LSTM):
        raise TypeError(
            f"trace_lstm expects an nn.LSTM, got {type(lstm).__name__}; "
            "for a model that contains LSTMs use `with trace_lstms(model) as tracer:`"
        )
    with trace_lstms(lstm) as tracer:
        lstm(x, hx)
    return tracer[-1]


def _traced_forward(lstm: nn.LSTM, name: str, sink: list[LSTMTrace]):
    """A replacement for ``lstm.forward`` with the same inputs and outputs that also records."""

    def forward(input, hx=None):  # noqa: A002 - the name nn.LSTM.forward uses
        output, hidden, trace = _run(lstm, name, input, hx)
        sink.append(trace)
        return output, hidden

    return forward


def _run(lstm: nn.LSTM, name: str, input, hx):  # noqa: A002
    """Mirror ``nn.LSTM.forward`` layer by layer; return (output, (h_n, c_n), trace)."""
    lstm._update_flat_weights()
    D = 2 if lstm.bidirectional else 1
    L, H = lstm.num_layers, lstm.hidden_size
    packed = isinstance(input, PackedSequence)
    is_batched = True
    if packed:
        data, batch_sizes, sorted_indices, unsorted_indices = input
        batch = int(batch_sizes[0])
        seq = data
    else:
        if input.dim() not in (2, 3):
            raise ValueError(f"LSTM: Expected input to be 2D or 3D, got {input.dim()}D instead")
        is_batched = input.dim() == 3
        if not is_batched:
            input = input.unsqueeze(0 if lstm.batch_first else 1)
        batch = input.size(0) if lstm.batch_first else input.size(1)
        sorted_indices = unsorted_indices = batch_sizes = None
        seq = input.transpose(0, 1) if lstm.batch_first else input  # (T, B, F), as the kernel does
    if hx is None:
        zeros = torch.zeros(L * D, batch, H, dtype=seq.dtype, device=seq.device)
        hx = (zeros, zeros)
    elif not packed:
        want = 3 if is_batched else 2
        if hx[0].dim() != want or hx[1].dim() != want:
            raise RuntimeError(
                f"For {'batched 3-D' if is_batched else 'unbatched 2-D'} input, hx and cx should "
                f"also be {want}-D but got ({hx[0].dim()}-D, {hx[1].dim()}-D) tensors"
            )
        if not is_batched:
            hx = (hx[0].unsqueeze(1), hx[1].unsqueeze(1))
    if not packed:
        lstm.check_forward_args(input, hx, batch_sizes)
    h0_user, c0_user = hx  # batch in the caller's order, (L*D, B, H)
    hx = lstm.permute_hidden(hx, sorted_indices)
    dropout = lstm.dropout if lstm.training else 0.0
    own_chunk = seq.device.type == "cuda"  # cuDNN: each layer's weights in a buffer of their own

    layer_inputs, layer_outputs, h_n, c_n = [], [], [], []
    layer_in = seq
    for layer in range(L):
        w, has_biases = _layer_weights(lstm, layer, own_chunk)
        state = (hx[0][layer * D : (layer + 1) * D], hx[1][layer * D : (layer + 1) * D])
        flags = (has_biases, 1, 0.0, lstm.training, lstm.bidirectional)  # 1 layer, no dropout
        if packed:
            out, hn, cn = _VF.lstm(layer_in, batch_sizes, state, w, *flags)
        else:  # (T, B, F) like the module's own kernel call after it transposes batch_first
            out, hn, cn = _VF.lstm(layer_in, state, w, *flags, False)
        layer_inputs.append(layer_in)
        layer_outputs.append(out)
        h_n.append(hn)
        c_n.append(cn)
        # the same call, on the same tensor, in the same order as inside nn.LSTM: same mask
        layer_in = torch.dropout(out, dropout, True) if dropout > 0 and layer < L - 1 else out
    hidden = (torch.cat(h_n), torch.cat(c_n))  # (L*D, B, H), sorted order when packed
    out = layer_outputs[-1]
    if packed:
        output = PackedSequence(out, batch_sizes, sorted_indices, unsorted_indices)
    else:
        output = out.transpose(0, 1) if lstm.batch_first else out
        if not is_batched:
            output = output.squeeze(0 if lstm.batch_first else 1)
            hidden = (hidden[0].squeeze(1), hidden[1].squeeze(1))
    hidden = lstm.permute_hidden(hidden, unsorted_indices)

    packing = (batch_sizes, sorted_indices, unsorted_indices) if packed else None
    with torch.no_grad():  # the trace is data: no graph, nothing added to the model's gradients
        trace = _record(
            lstm, name, layer_inputs, layer_outputs, (h0_user, c0_user), hidden, packing, is_batched
        )
    return output, hidden, trace


def _layer_weights(lstm: nn.LSTM, layer: int, own_chunk: bool) -> tuple[list[torch.Tensor], bool]:
    """One layer's weights (every direction) for a 1-layer ``_VF.lstm`` call, and its ``has_biases``.

    ``own_chunk=False`` (CPU): the module's own parameters, as ``nn.LSTM`` passes them.

    ``own_chunk=True`` (CUDA): views of one new buffer holding just this layer, in the order
    ``w_ih, w_hh, b_ih, b_hh`` per direction, zero biases when ``bias=False`` (so the call always
    has biases). cuDNN reads its weights from a single chunk of memory starting at the storage of
    the first weight. Slices of the module's flat buffer do not start there (layers > 0: compacted
    with a warning on every call), and without biases layer 0 passed its check but was read with
    the next layer's weights as biases (wrong numbers). Here every weight cuDNN reads is one of
    ours, at the place it checks, or it compacts a copy (still correct). The buffer is one
    ``torch.cat``, part of the graph, so gradients reach the module's parameters.
    """
    D = 2 if lstm.bidirectional else 1
    k = 4 if lstm.bias else 2
    own = lstm._flat_weights[layer * D * k : (layer + 1) * D * k]
    if not own_chunk:
        return own, lstm.bias
    parts = []
    for d in range(D):
        w_ih, w_hh, *biases = own[d * k : (d + 1) * k]
        if not biases:
            biases = [w_ih.new_zeros(w_ih.shape[0])] * 2
        parts += [w_ih, w_hh, *biases]
    flat = torch.cat([part.reshape(-1) for part in parts])
    pieces = flat.split([part.numel() for part in parts])
    return [piece.view_as(part) for piece, part in zip(pieces, parts, strict=True)], True


def _time_first(x: torch.Tensor, packing: tuple | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A kernel-layout tensor (packed data or ``(T, B, F)``) as ``(T, B, F)``, plus lengths.

    Packed data is unpacked to the caller's batch order with zeros at padded steps.
    """
    if packing is not None:
        batch_sizes, sorted_indices, unsorted_indices = packing
        return pad_packed_sequence(PackedSequence(x, batch_sizes, sorted_indices, unsorted_indices))
    return x, torch.full((x.shape[1],), x.shape[0], dtype=torch.int64)


def _record(
    lstm: nn.LSTM,
    name: str,
    layer_inputs: list[torch.Tensor],
    layer_outputs: list[torch.Tensor],
    initial: tuple[torch.Tensor, torch.Tensor],
    hidden: tuple[torch.Tensor, torch.Tensor],
    packing: tuple | None,
    is_batched: bool,
) -> LSTMTrace:
    """Build the :class:`LSTMTrace` from each layer's kernel input and output.

    ``layer_inputs`` / ``layer_outputs`` are in the kernel's layout (packed data, or ``(T, B, F)``);
    ``initial`` is ``(h0, c0)`` in the caller's batch order, ``(L*D, B, H)``; ``hidden`` the
    module's returned ``(h_n, c_n)``.

    Work stays in the kernel's time-first layout, where every tensor is contiguous: per layer,
    direction and gate the pre-activations are written by two matrix products (inputs, and the
    shifted h) straight into one buffer ``(4, L*D, T, B, H)``, the activations are applied in
    place, and one scan over time fills c for all layers at once. The trace's tensors are
    (batch-first) views of these buffers.
    """
    D = 2 if lstm.bidirectional else 1
    L, H = lstm.num_layers, lstm.hidden_size
    xs = [_time_first(x.detach(), packing)[0] for x in layer_inputs]  # each (T, B, F_l)
    outs = [_time_first(o.detach(), packing) for o in layer_outputs]
    lengths = outs[0][1].to(torch.int64)
    T, B = outs[0][0].shape[:2]
    h0 = initial[0].detach().reshape(L * D, B, H)
    c0 = initial[1].detach().reshape(L * D, B, H)
    dev, rows = h0.device, torch.arange(B, device=h0.device)
    last = lengths.to(dev) - 1  # (B,) each sequence's last real step
    # Unit-major buffer (L*D, 4, H, T*B): the products are computed transposed, W @ x^T, so each
    # layer and direction is one contiguous (4H, T*B) block (two GEMMs fill it) and each gate is a
    # contiguous (H, T*B) block inside it (fast in-place activations).
    N = T * B
    pre = torch.empty(L * D, 4, H, N, dtype=h0.dtype, device=dev)
    scale = torch.ones(4 * H, 1, dtype=h0.dtype, device=dev)
    scale[2 * H : 3 * H] = 2.0
    for layer in range(L):
        x2d = xs[layer].reshape(N, -1)  # (T*B, F_l)
        out2d = outs[layer][0].reshape(N, D * H)  # (T*B, D*H), both directions side by side
        for d in range(D):
            ld = layer * D + d
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            # g rows doubled: tanh(a) = 2 sigmoid(2a) - 1, so one sigmoid serves all four gates
            w_ih = getattr(lstm, "weight_ih" + sfx) * scale
            w_hh = getattr(lstm, "weight_hh" + sfx) * scale
            z = pre[ld].view(4 * H, N)  # (4H, T*B), column t*B + b is step t of sequence b
            if lstm.bias:
                bias = getattr(lstm, "bias_ih" + sfx) + getattr(lstm, "bias_hh" + sfx)
                torch.addmm(bias.unsqueeze(1) * scale, w_ih, x2d.T, out=z)
            else:
                torch.mm(w_ih, x2d.T, out=z)
            h_d = out2d[:, d * H : (d + 1) * H]  # (T*B, H), h of this direction at every step
            h0_part = w_hh @ h0[ld].T  # (4H, B)
            if d == 0:  # forward: h_{t-1} is the previous step's h, h0 before step 0
                z[:, B:].addmm_(w_hh, h_d[: N - B].T)
                z[:, :B] += h0_part
            else:  # backward: the next step's h (zeros past the end); h0 at the last real step
                z[:, : N - B].addmm_(w_hh, h_d[B:].T)
                z.index_add_(1, last * B + rows, h0_part)
    pre.sigmoid_()  # i, f, o; and sigmoid(2a) for g
    pre[:, 2].mul_(2.0).sub_(1.0)  # g = tanh(a) = 2 sigmoid(2a) - 1
    i, f, g, o = pre.unbind(1)  # each (L*D, H, T*B)
    c = _cell_scan(f, i * g, c0, lengths, D, B)  # (L*D, H, T*B)
    h = torch.stack([o_[0] for o_ in outs]).view(L, T, B, D, H)  # one copy of every layer's h
    if packing is not None:  # padded steps -> 0 (c, gates; h is zero there already)
        pad = (torch.arange(T, device=dev).unsqueeze(1) > last.unsqueeze(0)).reshape(N)
        for t in (pre, c):
            t.masked_fill_(pad, 0.0)  # pad (T*B,) broadcasts over L*D, gates and H

    def batch_first(t: torch.Tensor) -> torch.Tensor:  # (L*D, H, T*B) -> (L, D, B, T, H), a view
        return t.view(L, D, H, T, B).permute(0, 1, 4, 3, 2)

    h_n, c_n = (s.detach().reshape(L, D, B if is_batched else 1, H) for s in hidden)
    return LSTMTrace(
        name=name,
        h=h.permute(0, 3, 2, 1, 4),  # (L, D, B, T, H)
        c=batch_first(c),
        i=batch_first(i),
        f=batch_first(f),
        g=batch_first(g),
        o=batch_first(o),
        inputs=tuple(x.transpose(0, 1) for x in xs),  # (B, T, F_l) views
        h0=h0.view(L, D, B, H),
        c0=c0.view(L, D, B, H),
        h_n=h_n,
        c_n=c_n,
        lengths=lengths.cpu(),
        batch_first=lstm.batch_first,
        training=lstm.training,
    )


def _cell_scan(
    f: torch.Tensor, ig: torch.Tensor, c0: torch.Tensor, lengths: torch.Tensor, D: int, B: int
) -> torch.Tensor:
    """``c_t = f_t * c_{t-1} + (i*g)_t`` for every layer and direction in one loop over time.

    Args: ``f`` (a view), ``ig``: ``(L*D, H, T*B)``, column ``t*B + b`` is step t of sequence b;
    ``c0``: ``(L*D, B, H)``; ``lengths``: ``(B,)``. Backward directions (entries ``1::2``) run from
    ``T - 1`` down to 0 in the same loop; at their padded steps ``f = 1, i*g = 0``, so c waits at
    ``c0`` until each sequence's own last step.
    """
    if f.device.type != "cpu":  # one kernel per step is slow on a GPU: a log-depth scan
        return _cell_scan_parallel(f, ig, c0, lengths, D, B)
    c = torch.empty_like(ig)
    T = ig.shape[-1] // B
    c0 = c0.transpose(1, 2)  # (L*D, H, B)
    cols = [slice(t * B, (t + 1) * B) for t in range(T)]
    if D == 1:
        prev = c0
        for t in range(T):
            prev = torch.addcmul(ig[..., cols[t]], f[..., cols[t]], prev, out=c[..., cols[t]])
        return c
    steps = torch.arange(T, device=ig.device).unsqueeze(1)  # (T, 1)
    pad = (steps >= lengths.to(ig.device).unsqueeze(0)).reshape(T * B)  # (T*B,)
    f_back = f[1::2].masked_fill(pad, 1.0)  # (L, H, T*B) copies, backward directions
    ig_back = ig[1::2].masked_fill(pad, 0.0)
    f_fwd, ig_fwd = f[0::2], ig[0::2]
    c_fwd, c_back = torch.empty_like(ig_fwd), torch.empty_like(ig_back)
    prev_f, prev_b = c0[0::2], c0[1::2]
    for t in range(T):
        k, r = cols[t], cols[T - 1 - t]
        prev_f = torch.addcmul(ig_fwd[..., k], f_fwd[..., k], prev_f, out=c_fwd[..., k])
        prev_b = torch.addcmul(ig_back[..., r], f_back[..., r], prev_b, out=c_back[..., r])
    c[0::2], c[1::2] = c_fwd, c_back
    return c


def _cell_scan_parallel(
    f: torch.Tensor, ig: torch.Tensor, c0: torch.Tensor, lengths: torch.Tensor, D: int, B: int
) -> torch.Tensor:
    """:func:`_cell_scan` in ``ceil(log2 T)`` rounds of whole-tensor operations (Hillis-Steele).

    Step t maps ``c -> f_t c + (i*g)_t``; composing two steps is again such a map, so after the
    round with offset k each step holds the composition of the ``2k`` steps ending there. Backward
    directions run on time-flipped copies. Same inputs and layout as :func:`_cell_scan`; equal up
    to float rounding (products are grouped differently). Used off the CPU, where a loop of T
    small kernels costs more than these few large ones.
    """
    LD, H, N = ig.shape
    T = N // B
    a = f.reshape(LD, H, T, B).clone()  # (L*D, H, T, B): the factor of each step's map
    b = ig.reshape(LD, H, T, B).clone()  # its offset
    if D == 2:  # backward directions: padded steps are identity maps, then reverse time
        steps = torch.arange(T, device=ig.device).unsqueeze(1)  # (T, 1)
        pad = steps >= lengths.to(ig.device).unsqueeze(0)  # (T, B)
        a[1::2] = a[1::2].masked_fill(pad, 1.0).flip(2)
        b[1::2] = b[1::2].masked_fill(pad, 0.0).flip(2)
    b[:, :, 0] += a[:, :, 0] * c0.transpose(1, 2)  # fold c0 into the first map: (L*D, H, B)
    k = 1
    while k < T:
        b[:, :, k:] = torch.addcmul(b[:, :, k:], a[:, :, k:], b[:, :, :-k])  # new from old
        if 2 * k < T:
            a[:, :, k:] = a[:, :, k:] * a[:, :, :-k]
        k *= 2
    if D == 2:
        b[1::2] = b[1::2].flip(2)
    return b.view(LD, H, N)
