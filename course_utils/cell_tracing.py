"""Record every call of every ``nn.LSTMCell`` and ``nn.GRUCell``: a hand-written loop, step by step.

A decoder that calls a cell once per output step has no sequence module to trace; this records each
call as a one-step trace (:class:`~course_utils.tracing.LSTMTrace` or
:class:`~course_utils.gru_tracing.GRUTrace` with ``L = D = T = 1``) and ``rec.joined(name)`` puts a
loop's calls back together into one sequence::

    with trace_cells(model) as rec:
        y = model(x)                    # unchanged: a forward hook only reads
    trace, how = rec.joined("decoder.cell")   # h, c and gates over every step of the loop

The cell's own outputs (h, and c for an LSTM cell) are recorded as returned; the gates are
recomputed from the call's input and state, without a graph.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from .gru_tracing import GRUTrace
from .records import Recording, Selection, select_modules
from .tracing import _HINT, LSTMTrace

__all__ = ["trace_cells"]

Cell = nn.LSTMCell | nn.GRUCell


@contextlib.contextmanager
def trace_cells(model: nn.Module, *, only: Selection = None) -> Iterator[Recording]:
    """Record every call of every ``nn.LSTMCell`` / ``nn.GRUCell`` in ``model`` while the block runs.

    Args:
        model: any module (``""``: the model itself, if it is a cell).
        only: module names (or a function of the name) to watch some cells and not others.

    Raises:
        ValueError: ``model`` contains no such cell, or ``only`` names none of them.
    """
    cells = select_modules(
        model,
        lambda m: isinstance(m, (nn.LSTMCell, nn.GRUCell)),
        only,
        recorder="trace_cells",
        what="nn.LSTMCell or nn.GRUCell",
        hint=_HINT,
    )
    rec: Recording = Recording(what="RNN cell", watched=tuple(cells))
    handles = []
    try:
        for name, cell in cells.items():
            hook = functools.partial(_record_call, name=name, rec=rec)
            handles.append(cell.register_forward_hook(hook, with_kwargs=True))
        yield rec
    finally:
        for handle in handles:
            handle.remove()


def _step(t: torch.Tensor) -> torch.Tensor:
    """``(B, units)`` -> ``(1, 1, B, 1, units)``: one layer, one direction, one step."""
    return t[None, None, :, None]


def _state(t: torch.Tensor) -> torch.Tensor:
    """``(B, units)`` -> ``(1, 1, B, units)``, as a trace's initial and final states."""
    return t[None, None]


def _record_call(
    cell: Cell, args: tuple, kwargs: dict, output: Any, *, name: str, rec: Recording
) -> None:
    """Forward hook: append the call's one-step trace to ``rec`` (the output is left alone)."""
    x = args[0] if args else kwargs["input"]
    hx = args[1] if len(args) > 1 else kwargs.get("hx")
    lstm = isinstance(cell, nn.LSTMCell)
    outs = output if lstm else (output,)
    batched = x.dim() == 2

    def batch(t: torch.Tensor) -> torch.Tensor:  # detached, (B, units)
        return t.detach() if batched else t.detach().unsqueeze(0)

    with torch.no_grad():
        x = batch(x)
        outs = tuple(batch(t) for t in outs)
        if hx is None:
            starts = tuple(torch.zeros_like(t) for t in outs)
        else:
            starts = tuple(batch(t) for t in (hx if lstm else (hx,)))
        from_x = x @ cell.weight_ih.T  # (B, G*H), G = 4 (LSTM) or 3 (GRU)
        from_h = starts[0] @ cell.weight_hh.T
        if cell.bias:
            from_x, from_h = from_x + cell.bias_ih, from_h + cell.bias_hh
        common = {
            "name": name,
            "call": rec.next_call(name),
            "inputs": (x.unsqueeze(1),),  # (B, 1, input_size)
            "lengths": torch.ones(x.shape[0], dtype=torch.int64),  # on the CPU, as in every trace
            "batch_first": True,
            "training": cell.training,
        }
        if lstm:
            i, f, g, o = (from_x + from_h).chunk(4, dim=1)
            (h, c), (h0, c0) = outs, starts
            record = LSTMTrace(
                h=_step(h), c=_step(c), i=_step(i.sigmoid()), f=_step(f.sigmoid()),
                g=_step(g.tanh()), o=_step(o.sigmoid()), h0=_state(h0), c0=_state(c0),
                h_n=_state(h), c_n=_state(c), **common,
            )  # fmt: skip
        else:
            H = cell.hidden_size
            r, z = (from_x[:, : 2 * H] + from_h[:, : 2 * H]).sigmoid().chunk(2, dim=1)
            n = torch.addcmul(from_x[:, 2 * H :], r, from_h[:, 2 * H :]).tanh()
            (h,), (h0,) = outs, starts
            record = GRUTrace(
                h=_step(h), r=_step(r), z=_step(z), n=_step(n), h0=_state(h0), h_n=_state(h),
                **common,
            )  # fmt: skip
    rec.records.append(record)
