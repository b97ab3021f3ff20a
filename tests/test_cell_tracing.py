"""Cell loops: every call recorded, the output untouched, a loop's calls joined into one sequence."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.cell_tracing import trace_cells
from course_utils.gru_tracing import GRUTrace, trace_gru
from course_utils.tracing import LSTMTrace, trace_lstm

STEPS = 5


class _Loop(nn.Module):
    """An LSTMCell and a GRUCell stepped by hand, the GRU cell reading the LSTM cell's h."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm_cell = nn.LSTMCell(3, 4)
        self.gru_cell = nn.GRUCell(4, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B = x.shape[0]
        h = c = x.new_zeros(B, 4)
        g = None  # the GRU cell starts from its default zeros
        hs, cs, gs = [], [], []
        for t in range(x.shape[1]):
            h, c = self.lstm_cell(x[:, t], (h, c))
            g = self.gru_cell(h, g) if g is not None else self.gru_cell(h)
            hs.append(h)
            cs.append(c)
            gs.append(g)
        return torch.stack(hs, 1), torch.stack(cs, 1), torch.stack(gs, 1)  # (B, T, ·)


def test_a_hand_loop_of_cells_is_recorded_per_call_and_joined() -> None:
    torch.manual_seed(0)
    model = _Loop().eval()
    x = torch.randn(2, STEPS, 3)
    ref = model(x)
    with trace_cells(model) as rec:
        hs, cs, gs = model(x)
    for ours, theirs in zip((hs, cs, gs), ref, strict=True):
        assert torch.equal(ours, theirs)  # the output is untouched
    assert len(rec) == 2 * STEPS and rec.names == ["lstm_cell", "gru_cell"]
    assert [c.call for c in rec.calls("gru_cell")] == list(range(STEPS))
    step = rec[0]
    assert isinstance(step, LSTMTrace) and step.h.shape == (1, 1, 2, 1, 4)
    assert isinstance(rec["gru_cell"], GRUTrace)

    lstm, how = rec.joined("lstm_cell")
    assert how == (
        f"assembled from {STEPS} calls of 1 step(s) each: each call continued from the "
        "previous call's final state"
    )
    assert lstm.h.shape == (1, 1, 2, STEPS, 4) and lstm.lengths.tolist() == [STEPS, STEPS]
    assert torch.equal(lstm.h[0, 0], hs) and torch.equal(lstm.c[0, 0], cs)
    torch.testing.assert_close(lstm.h, lstm.o * lstm.c.tanh(), atol=1e-6, rtol=0)
    gru, _ = rec.joined("gru_cell")
    assert torch.equal(gru.h[0, 0], gs)
    prev = torch.cat([gru.h0[:, :, :, None], gru.h[:, :, :, :-1]], dim=3)  # h_{t-1}
    torch.testing.assert_close(gru.h, (1 - gru.z) * gru.n + gru.z * prev, atol=1e-6, rtol=0)
    assert not any(m._forward_hooks for m in model.modules())  # nothing left behind


def test_cells_agree_with_the_sequence_tracers() -> None:
    """A cell with a sequence module's weights, stepped by hand, joins into that module's trace."""
    torch.manual_seed(1)
    x = torch.randn(3, STEPS, 2)
    pairs = [
        (nn.LSTM(2, 4, batch_first=True), nn.LSTMCell(2, 4), trace_lstm),
        (nn.GRU(2, 4, batch_first=True), nn.GRUCell(2, 4), trace_gru),
    ]
    for module, cell, trace in pairs:
        for kind in ("ih", "hh"):
            getattr(cell, f"weight_{kind}").data = getattr(module, f"weight_{kind}_l0").data
            getattr(cell, f"bias_{kind}").data = getattr(module, f"bias_{kind}_l0").data
        expected = trace(module, x)
        with trace_cells(cell) as rec:
            state = None
            for t in range(STEPS):
                state = cell(x[:, t], state)
        joined, _ = rec.joined("")
        for name in (*expected.states, *expected.gates):
            torch.testing.assert_close(
                getattr(joined, name), getattr(expected, name), atol=1e-6, rtol=0
            )


def test_unbatched_kwargs_only_and_errors() -> None:
    torch.manual_seed(2)
    cell = nn.GRUCell(3, 2, bias=False)
    x = torch.randn(3)
    with trace_cells(nn.Sequential(cell, nn.Linear(2, 1)), only=["0"]) as rec:
        h = cell(input=x, hx=torch.zeros(2))
    tr = rec["0"]
    assert tr.h.shape == (1, 1, 1, 1, 2) and torch.equal(tr.h[0, 0, 0, 0], h)
    with pytest.raises(ValueError, match="no nn.LSTMCell or nn.GRUCell found in LSTM"):
        with trace_cells(nn.LSTM(2, 3)):
            pass
    with pytest.raises(ValueError, match="only= names"):
        with trace_cells(nn.Sequential(cell), only=["1"]):
            pass
    with trace_cells(cell) as rec:  # two calls that do not continue each other
        cell(torch.randn(2, 3))
        cell(torch.randn(2, 3))
    joined, how = rec.joined("")
    assert joined is rec[1] and "do not continue each other" in how
