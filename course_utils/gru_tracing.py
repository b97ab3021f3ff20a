"""Look inside every ``nn.GRU`` (h and the r, z, n gates) and plain ``nn.RNN`` (h) at every step.

The GRU counterpart of :mod:`course_utils.tracing`, on the same contract and by the same method::

    with trace_grus(model) as rec:          # every nn.GRU inside model is traced while inside
        y = model(x)                        # y is exactly what the model returns without tracing
    tr = rec[0]                             # a GRUTrace: tr.h, tr.r, tr.z, tr.n, (L, D, B, T, H)

    tr = trace_gru(gru, x, h0)              # one module on its own

Each layer runs with PyTorch's fused kernel (``torch._VF.gru``), so h is the module's own; the gates
then come from batched products over all steps at once, with :math:`h_{t-1}` read off h:

.. math::
    r_t = \\sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}), \\quad
    z_t = \\sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}),

    n_t = \\tanh(W_{in} x_t + b_{in} + r_t \\odot (W_{hn} h_{t-1} + b_{hn})), \\quad
    h_t = (1 - z_t) \\odot n_t + z_t \\odot h_{t-1}.

A plain ``nn.RNN`` (``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``, or relu) has no gates:
:func:`trace_rnns` records the h of every layer it hides inside, the states the module returns only
for the top layer. Shapes, padding, packed input, dropout and the GPU notes are those of
:mod:`course_utils.tracing`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from .records import Recording, Selection
from .tracing import (
    _add_backward_h0,
    _batch_first,
    _gate_products,
    _Layers,
    _padding,
    _steps,
    _StepTrace,
    _trace_fields,
    _trace_one,
    _traced_modules,
)

__all__ = ["GRUTrace", "RNNTrace", "trace_gru", "trace_grus", "trace_rnn", "trace_rnns"]


@dataclass(frozen=True, eq=False)
class GRUTrace(_StepTrace):
    """Everything one call of an ``nn.GRU`` computed, per layer, direction and time step.

    Attributes:
        name: the module's qualified name inside the traced model (``""`` for the model itself).
        call: which call of that module this is (0-based).
        h: hidden states, ``(L, D, B, T, H)``; ``h[-1]`` is what ``nn.GRU`` outputs.
        r, z, n: reset gate, update gate and candidate, ``(L, D, B, T, H)``.
        inputs: what each layer received, one ``(B, T, input_size_l)`` tensor per layer.
        h0: the initial state used, ``(L, D, B, H)``.
        h_n: the final state the module returned, ``(L, D, B, H)`` (batch in input order).
        lengths: true length of each sequence, ``(B,)`` int64.
        batch_first: the module's setting (the trace itself is batch-first regardless).
        training: whether the module ran in training mode (dropout active between layers).

    All tensors are detached (no graph) and padded steps are zero.
    """

    states: ClassVar[tuple[str, ...]] = ("h",)
    gates: ClassVar[tuple[str, ...]] = ("r", "z", "n")
    gate_names: ClassVar[dict[str, str]] = {
        "r": "reset gate",
        "z": "update gate",
        "n": "candidate",
    }

    name: str
    call: int
    h: torch.Tensor
    r: torch.Tensor
    z: torch.Tensor
    n: torch.Tensor
    inputs: tuple[torch.Tensor, ...]
    h0: torch.Tensor
    h_n: torch.Tensor
    lengths: torch.Tensor
    batch_first: bool
    training: bool

    def final_states(self) -> torch.Tensor:
        """The last h of every layer and direction, read off the trace, ``(L, D, B, H)``.

        Forward direction: step ``lengths[b] - 1``; backward direction: step 0. Equal to the
        module's ``h_n`` reshaped to ``(L, D, B, H)``.
        """
        return self._final("h")


@contextlib.contextmanager
def trace_grus(model: nn.Module, *, only: Selection = None) -> Iterator[Recording]:
    """Trace every ``nn.GRU`` inside ``model`` (or ``model`` itself) while the block runs.

    Each call records a :class:`GRUTrace` into the yielded
    :class:`~course_utils.records.Recording`; outputs and gradients are unchanged.

    Raises:
        ValueError: ``model`` contains no ``nn.GRU``, or ``only`` names none of them.
    """
    with _traced_modules(model, nn.GRU, only, _record_gru, recorder="trace_grus") as rec:
        yield rec


def trace_gru(
    gru: nn.GRU, x: torch.Tensor | PackedSequence, h0: torch.Tensor | None = None
) -> GRUTrace:
    """Run one ``nn.GRU`` on ``x`` (and optional ``h0``, ``(L * D, B, H)``) and return its trace."""
    return _trace_one(gru, nn.GRU, trace_grus, x, h0)


def _record_gru(gru: nn.GRU, name: str, call: int, layers: _Layers) -> GRUTrace:
    """Build the :class:`GRUTrace` from each layer's kernel input and output.

    Per layer and direction: ``[1 | x] [b | W_ih]^T`` for all three gates and the shifted h times
    ``W_hr, W_hz`` go into one time-major buffer ``(T, B, L*D, 3, H)`` (r and z carry both
    biases); ``W_hn h_{t-1} + b_hn`` goes to a scratch buffer until r is known. n's columns are
    doubled so that ``tanh(a) = 2 sigmoid(2a) - 1``.
    """
    D = 2 if gru.bidirectional else 1
    L, H = gru.num_layers, gru.hidden_size
    steps = _steps(layers, H, D)
    T, B, N = steps.T, steps.B, steps.T * steps.B
    pre, blocks = _gate_products(gru, steps, 3, tanh_gate=2, fold=2 * H)  # r, z, n
    hidden_n = pre.new_empty(N, H)  # W_hn h_{t-1} + b_hn of one layer and direction
    for ld, g, h_prev, w_hh, b_hh in blocks:
        g[:, : 2 * H].addmm_(h_prev, w_hh[:, : 2 * H])
        torch.addmm(b_hh[2 * H :], h_prev, w_hh[:, 2 * H :], out=hidden_n)
        if ld % D:  # backward direction
            _add_backward_h0(g[:, : 2 * H], w_hh[:, : 2 * H], steps, ld)
            _add_backward_h0(hidden_n, w_hh[:, 2 * H :], steps, ld)
        rz = g[:, : 2 * H].sigmoid_()
        g[:, 2 * H :].addcmul_(rz[:, :H], hidden_n)  # 2 (W_in x + b_in + r (W_hn h + b_hn))
    n = pre[:, :, :, 2]
    n.sigmoid_().mul_(2.0).sub_(1.0)  # n = tanh(a) = 2 sigmoid(2a) - 1
    if layers.packing is not None:  # padded steps -> 0 (h is zero there already)
        pre.view(T, B, L * D, -1).masked_fill_(_padding(steps), 0.0)
    r, z, n = pre.unbind(3)  # each (T, B, L*D, H)
    return GRUTrace(
        **_trace_fields(gru, name, call, steps, layers),
        r=_batch_first(r, L, D),
        z=_batch_first(z, L, D),
        n=_batch_first(n, L, D),
    )


@dataclass(frozen=True, eq=False)
class RNNTrace(_StepTrace):
    """Everything one call of a plain ``nn.RNN`` computed: h of every layer, direction and step.

    Attributes: ``name``, ``call``, ``h`` ``(L, D, B, T, H)``, ``inputs``, ``h0``, ``h_n``,
    ``lengths``, ``batch_first``, ``training`` as in :class:`GRUTrace`; ``nonlinearity``
    (``"tanh"`` or ``"relu"``). It has no gates (``gates == ()``).
    """

    states: ClassVar[tuple[str, ...]] = ("h",)
    gates: ClassVar[tuple[str, ...]] = ()
    gate_names: ClassVar[dict[str, str]] = {}

    name: str
    call: int
    h: torch.Tensor
    inputs: tuple[torch.Tensor, ...]
    h0: torch.Tensor
    h_n: torch.Tensor
    lengths: torch.Tensor
    batch_first: bool
    training: bool
    nonlinearity: str = "tanh"

    hidden_size = property(lambda self: self.h.shape[4], doc="H, units per layer and direction")

    def final_states(self) -> torch.Tensor:
        """The last h of every layer and direction, read off the trace, ``(L, D, B, H)``."""
        return self._final("h")


@contextlib.contextmanager
def trace_rnns(model: nn.Module, *, only: Selection = None) -> Iterator[Recording]:
    """Trace every plain ``nn.RNN`` inside ``model`` while the block runs (an :class:`RNNTrace`
    per call; outputs and gradients unchanged).

    Raises:
        ValueError: ``model`` contains no ``nn.RNN``, or ``only`` names none of them.
    """
    with _traced_modules(model, nn.RNN, only, _record_rnn, recorder="trace_rnns") as rec:
        yield rec


def trace_rnn(
    rnn: nn.RNN, x: torch.Tensor | PackedSequence, h0: torch.Tensor | None = None
) -> RNNTrace:
    """Run one ``nn.RNN`` on ``x`` (and optional ``h0``, ``(L * D, B, H)``) and return its trace."""
    return _trace_one(rnn, nn.RNN, trace_rnns, x, h0)


def _record_rnn(rnn: nn.RNN, name: str, call: int, layers: _Layers) -> RNNTrace:
    """The :class:`RNNTrace` of one call: every layer's h, as its kernel returned it."""
    steps = _steps(layers, rnn.hidden_size, 2 if rnn.bidirectional else 1)
    return RNNTrace(**_trace_fields(rnn, name, call, steps, layers), nonlinearity=rnn.nonlinearity)
