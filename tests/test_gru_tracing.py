"""GRU tracing must agree with nn.GRU exactly, in every supported variant, and change nothing."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from course_utils.gru_tracing import GRUTrace, trace_gru, trace_grus
from course_utils.tracing import trace_lstm, trace_lstms
from tests.test_tracing import (
    assert_gradients_unchanged,
    bias_free_trace,
    traced_and_reference,
)

ATOL = 1e-6


def _previous_h(tr: GRUTrace) -> torch.Tensor:
    """h_{t-1} of every step: the step before (forward) or after (backward), h0 at the ends."""
    prev = torch.zeros_like(tr.h)
    prev[:, 0, :, 1:] = tr.h[:, 0, :, :-1]
    prev[:, 0, :, 0] = tr.h0[:, 0]
    if tr.num_directions == 2:
        prev[:, 1, :, :-1] = tr.h[:, 1, :, 1:]
        rows = torch.arange(tr.batch)
        prev[:, 1, rows, tr.lengths - 1] = tr.h0[:, 1]
    return prev


@pytest.mark.parametrize("k", range(25))  # the LSTM tests' configurations, without projections
def test_trace_matches_nn_gru(k: int) -> None:
    tr, ref_h, _ = traced_and_reference(k, nn.GRU, trace_grus)
    assert isinstance(tr, GRUTrace)
    L, D, B, T, H = tr.h.shape
    torch.testing.assert_close(tr.final_states(), ref_h.view(L, D, B, H), rtol=0, atol=ATOL)
    # the GRU equation holds step by step: h_t = (1 - z) n + z h_{t-1}
    real = tr.mask()
    rebuilt = (1 - tr.z) * tr.n + tr.z * _previous_h(tr)
    torch.testing.assert_close(rebuilt[:, :, real], tr.h[:, :, real], rtol=0, atol=ATOL)


def test_gates_equal_a_hand_written_cell() -> None:
    """Layer 1 of a stacked GRU, forward direction, step by step with the textbook equations."""
    torch.manual_seed(0)
    gru = nn.GRU(3, 5, num_layers=2, batch_first=True).eval()
    x = torch.randn(2, 6, 3)
    tr = trace_gru(gru, x)
    w_ih, w_hh = gru.weight_ih_l1.detach(), gru.weight_hh_l1.detach()
    b_ih, b_hh = gru.bias_ih_l1.detach(), gru.bias_hh_l1.detach()
    h = torch.zeros(2, 5)
    for t in range(6):
        gi = tr.h[0, 0, :, t] @ w_ih.T + b_ih  # layer 1's input is layer 0's h
        gh = h @ w_hh.T + b_hh
        r = (gi[:, :5] + gh[:, :5]).sigmoid()
        z = (gi[:, 5:10] + gh[:, 5:10]).sigmoid()
        n = (gi[:, 10:] + r * gh[:, 10:]).tanh()
        h = (1 - z) * n + z * h
        for name, ours in zip("rznh", (r, z, n, h), strict=True):
            torch.testing.assert_close(getattr(tr, name)[1, 0, :, t], ours, rtol=0, atol=ATOL)


def test_gradients_unchanged() -> None:
    assert_gradients_unchanged(nn.GRU, trace_grus, trace_gru)


def test_unbatched_packed_helpers_and_errors() -> None:
    torch.manual_seed(0)
    gru = nn.GRU(3, 4, num_layers=2, bidirectional=True)
    x = torch.randn(6, 3)
    out, h = gru(x)
    tr = trace_gru(gru, x)
    assert tr.h.shape == (2, 2, 1, 6, 4)
    torch.testing.assert_close(tr.output()[0], out, rtol=0, atol=ATOL)
    torch.testing.assert_close(tr.final_states()[:, :, 0], h.view(2, 2, 4), rtol=0, atol=ATOL)
    packed = pack_padded_sequence(torch.randn(5, 2, 3), torch.tensor([5, 3]))
    tr = trace_gru(gru, packed, torch.randn(4, 2, 4))
    top = tr.layer(-1, 1)
    assert top.layer == 1 and top.direction == 1 and top.z.shape == (2, 5, 4)
    assert tr.unpadded("n", 1, layer=0).shape == (3, 4)
    assert GRUTrace.states == ("h",) and GRUTrace.gates == ("r", "z", "n")
    assert GRUTrace.gate_names["z"] == "update gate"
    with pytest.raises(ValueError, match="what must be one of h, r, z, n"):
        tr.unpadded("c", 0)
    with pytest.raises(RuntimeError, match="initial states should also be 2-D"):
        trace_gru(gru, x, torch.randn(4, 1, 4))
    assert "forward" not in vars(gru)


@pytest.mark.parametrize(
    ("tracer", "trace", "kind", "other"),
    [(trace_grus, trace_gru, "GRU", nn.LSTM), (trace_lstms, trace_lstm, "LSTM", nn.GRU)],
)
def test_the_other_kind_of_module_is_refused_with_a_pointer(tracer, trace, kind, other) -> None:
    """A GRU given to the LSTM tracer (and the other way round) says where it is traced."""
    found = "trace_grus" if kind == "LSTM" else "trace_lstms"
    with pytest.raises(ValueError, match=f"no nn.{kind} found in {other.__name__}.*{found}"):
        with tracer(other(2, 3)):
            pass
    with pytest.raises(TypeError, match=f"expects an nn.{kind}, got {other.__name__}"):
        trace(other(2, 3), torch.randn(4, 2))


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("own_chunk", [False, True])  # True: the weights as passed on a GPU
def test_bias_free_stacks_match_nn_gru(bidirectional: bool, own_chunk: bool, monkeypatch) -> None:
    _, tr = bias_free_trace(nn.GRU, trace_grus, bidirectional, own_chunk, monkeypatch)
    rebuilt = (1 - tr.z) * tr.n + tr.z * _previous_h(tr)
    torch.testing.assert_close(rebuilt, tr.h, atol=1e-6, rtol=0)


class _Decoder(nn.Module):
    """A GRU called once per step, each call from the previous call's final state."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.GRU(2, 3, batch_first=True)
        self.gru = nn.GRU(2, 3, num_layers=2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.encoder(x)
        h = h.expand(2, -1, -1).contiguous()
        outs = []
        for t in range(x.shape[1]):
            out, h = self.gru(x[:, t : t + 1], h)
            outs.append(out)
        return torch.cat(outs, dim=1)


def test_a_gru_called_once_per_step_is_joined_and_only_selects() -> None:
    torch.manual_seed(1)
    model = _Decoder().eval()
    x = torch.randn(2, 5, 2)
    with torch.no_grad(), trace_grus(model, only=["gru"]) as rec:
        y = model(x)
    assert rec.names == ["gru"] and [c.call for c in rec] == [0, 1, 2, 3, 4]
    joined, how = rec.joined("gru")
    assert how.startswith("assembled from 5 calls of 1 step(s) each")
    assert joined.seq_len == 5 and joined.call == 4
    torch.testing.assert_close(joined.output(), y, atol=0, rtol=0)
    with torch.no_grad():
        out, h_n = model.gru(joined.inputs[0], joined.h0[:, 0])
    torch.testing.assert_close(joined.output(), out, atol=1e-6, rtol=0)
    torch.testing.assert_close(joined.h_n[:, 0], h_n, atol=1e-6, rtol=0)
    assert not any("forward" in vars(m) for m in model.modules())


@pytest.mark.parametrize("k", range(0, 25, 3))  # a third of the configurations: same machinery
def test_plain_rnn_trace_matches_nn_rnn(k: int) -> None:
    from course_utils.gru_tracing import RNNTrace, trace_rnns

    tr, ref_h, _ = traced_and_reference(k, nn.RNN, trace_rnns)
    assert isinstance(tr, RNNTrace) and tr.gates == () and tr.states == ("h",)
    L, D, B, T, H = tr.h.shape
    assert tr.hidden_size == H
    torch.testing.assert_close(tr.final_states(), ref_h.view(L, D, B, H), rtol=0, atol=ATOL)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_plain_rnn_h_follows_its_equation_in_every_layer_and_direction(nonlinearity: str):
    from course_utils.gru_tracing import trace_rnn

    torch.manual_seed(0)
    rnn = nn.RNN(
        3, 5, num_layers=2, bidirectional=True, batch_first=True, nonlinearity=nonlinearity
    )
    x, lengths = torch.randn(4, 6, 3), torch.tensor([6, 3, 5, 2])
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    tr = trace_rnn(rnn, packed)
    act = torch.tanh if nonlinearity == "tanh" else torch.relu
    prev = _previous_h(tr)  # (L, D, B, T, H)
    real = tr.mask()
    for layer in range(2):
        for d, sfx in enumerate(("", "_reverse")):
            w_ih, w_hh = (getattr(rnn, f"weight_{k}_l{layer}{sfx}") for k in ("ih", "hh"))
            b = getattr(rnn, f"bias_ih_l{layer}{sfx}") + getattr(rnn, f"bias_hh_l{layer}{sfx}")
            with torch.no_grad():
                rebuilt = act(tr.inputs[layer] @ w_ih.T + prev[layer, d] @ w_hh.T + b)
            torch.testing.assert_close(rebuilt[real], tr.h[layer, d][real], rtol=0, atol=ATOL)
    with torch.no_grad():
        out, _ = rnn(packed)
    assert tr.lengths.tolist() == [6, 3, 5, 2]
    from torch.nn.utils.rnn import pad_packed_sequence

    torch.testing.assert_close(tr.output(), pad_packed_sequence(out, batch_first=True)[0])
