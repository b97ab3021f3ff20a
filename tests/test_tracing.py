"""Tracing must agree with nn.LSTM exactly, in every supported variant, and change nothing."""

from __future__ import annotations

import contextlib
import random

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from course_utils.records import Recording
from course_utils.seq2seq import Seq2SeqAttention
from course_utils.tracing import LSTMTrace, trace_lstm, trace_lstms

ATOL = 1e-5


def _random_config(rng: random.Random) -> dict:
    return {
        "input_size": rng.randint(1, 6),
        "hidden_size": rng.randint(1, 7),
        "num_layers": rng.randint(1, 3),
        "bidirectional": rng.random() < 0.5,
        "batch_first": rng.random() < 0.5,
        "bias": rng.random() < 0.8,
        "dropout": rng.choice([0.0, 0.4]),
        "train": rng.random() < 0.5,
        "packed": rng.random() < 0.5,
        "given_hx": rng.random() < 0.5,
        "batch": rng.randint(1, 5),
        "seq_len": rng.randint(1, 8),
    }


def _projected_config(rng: random.Random) -> dict:
    cfg = _random_config(rng)
    cfg["hidden_size"] = rng.randint(2, 7)
    cfg["proj_size"] = rng.randint(1, cfg["hidden_size"] - 1)
    return cfg


def _build(cfg: dict, seed: int, kind: type[nn.RNNBase] = nn.LSTM):
    """A module of ``kind`` (nn.LSTM or nn.GRU), its input, initial state(s) and lengths."""
    torch.manual_seed(seed)
    dropout = cfg["dropout"] if cfg["num_layers"] > 1 else 0.0
    proj = {"proj_size": cfg.get("proj_size", 0)} if kind is nn.LSTM else {}
    lstm = kind(
        cfg["input_size"],
        cfg["hidden_size"],
        num_layers=cfg["num_layers"],
        bidirectional=cfg["bidirectional"],
        batch_first=cfg["batch_first"],
        bias=cfg["bias"],
        dropout=dropout,
        **proj,
    ).train(cfg["train"])
    B, T, D = cfg["batch"], cfg["seq_len"], 2 if cfg["bidirectional"] else 1
    x = torch.randn(B, T, cfg["input_size"])
    lengths = torch.randint(1, T + 1, (B,)) if cfg["packed"] else torch.full((B,), T)
    lengths[0] = T  # pad_packed_sequence pads to the longest length
    hx = None
    if cfg["given_hx"]:
        shape = (cfg["num_layers"] * D, B, cfg["hidden_size"])
        h_shape = (*shape[:2], cfg.get("proj_size") or cfg["hidden_size"])
        hx = (torch.randn(h_shape), torch.randn(shape)) if kind is nn.LSTM else torch.randn(shape)
    inp = x if cfg["batch_first"] else x.transpose(0, 1)
    if cfg["packed"]:
        inp = pack_padded_sequence(
            inp, lengths, batch_first=cfg["batch_first"], enforce_sorted=False
        )
    return lstm, inp, hx, lengths


def _batch_first_output(out, cfg) -> torch.Tensor:
    if isinstance(out, nn.utils.rnn.PackedSequence):
        return pad_packed_sequence(out, batch_first=True)[0]
    return out if cfg["batch_first"] else out.transpose(0, 1)


CONFIGS = (
    [_random_config(random.Random(k)) for k in range(24)]
    + [
        # the hardest case for the dropout masks: (T, B, 2H) layout, both directions, training
        {
            "input_size": 3,
            "hidden_size": 4,
            "num_layers": 3,
            "bidirectional": True,
            "batch_first": False,
            "bias": True,
            "dropout": 0.4,
            "train": True,
            "packed": False,
            "given_hx": True,
            "batch": 3,
            "seq_len": 5,
        },
    ]
    + [_projected_config(random.Random(100 + k)) for k in range(10)]
)


def traced_and_reference(k: int, kind: type[nn.RNNBase], tracer):
    """Configuration ``k`` run untraced and traced with the same dropout draws: tracing changes
    nothing (outputs and final states bit for bit), the shapes follow the configuration, the
    output is rebuilt from the trace and padded steps are zero. Returns the trace, the reference
    final states (as the module returns them) and the configuration."""
    cfg = CONFIGS[k]
    module, inp, hx, lengths = _build(cfg, seed=k, kind=kind)
    torch.manual_seed(100 + k)
    ref_out, ref_hidden = module(inp, hx)
    torch.manual_seed(100 + k)  # same dropout draws
    with tracer(module) as rec:
        out, hidden = module(inp, hx)
    tr = rec[0]
    assert isinstance(rec, Recording) and (tr.name, tr.call) == ("", 0)
    # tracing changes nothing, not even the dropout masks
    torch.testing.assert_close(
        _batch_first_output(out, cfg), _batch_first_output(ref_out, cfg), rtol=0, atol=0
    )
    torch.testing.assert_close(hidden, ref_hidden, rtol=0, atol=0)
    D = 2 if cfg["bidirectional"] else 1
    shape = (cfg["num_layers"], D, cfg["batch"], int(lengths.max()), cfg["hidden_size"])
    P = cfg.get("proj_size") or cfg["hidden_size"]
    assert tr.h.shape == (*shape[:4], P)
    for name in tr.gates:
        assert getattr(tr, name).shape == shape
    # the traced top-layer h is the module's output
    torch.testing.assert_close(tr.output(), _batch_first_output(ref_out, cfg), rtol=0, atol=ATOL)
    # padded steps are zero, lengths recorded
    assert torch.equal(tr.lengths, lengths)
    pad = ~tr.mask()
    for name in tr.layer(0).tensors:
        assert not getattr(tr, name)[:, :, pad].any()
    return tr, ref_hidden, cfg


@pytest.mark.parametrize("k", range(len(CONFIGS)))
def test_trace_matches_nn_lstm(k: int) -> None:
    tr, (ref_h, ref_c), cfg = traced_and_reference(k, nn.LSTM, trace_lstms)
    L, D, B, T, H = tr.c.shape
    P = tr.h.shape[-1]
    assert tr.proj_size == cfg.get("proj_size", 0)
    fh, fc = tr.final_states()  # the traced final h and c are (h_n, c_n)
    torch.testing.assert_close(fh, ref_h.view(L, D, B, P), rtol=0, atol=ATOL)
    torch.testing.assert_close(fc, ref_c.view(L, D, B, H), rtol=0, atol=ATOL)
    # the LSTM equations hold step by step: h = o * tanh(c) (then projected by W_hr)
    torch.testing.assert_close(tr.h_cell if P != H else tr.h, tr.o * tr.c.tanh(), rtol=0, atol=ATOL)


def test_gates_equal_a_hand_written_cell() -> None:
    """Layer 1 of a stacked LSTM, forward direction, step by step with the textbook equations."""
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 5, num_layers=2, batch_first=True).eval()
    x = torch.randn(2, 6, 3)
    tr = trace_lstm(lstm, x)
    w_ih, w_hh = lstm.weight_ih_l1, lstm.weight_hh_l1
    b = lstm.bias_ih_l1 + lstm.bias_hh_l1
    h = c = torch.zeros(2, 5)
    for t in range(6):
        z = tr.h[0, 0, :, t] @ w_ih.T + h @ w_hh.T + b  # layer 1's input is layer 0's h
        i, f, g, o = z.chunk(4, dim=-1)
        i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
        c = f * c + i * g
        h = o * c.tanh()
        for name, ours in zip("ifgoch", (i, f, g, o, c, h), strict=True):
            torch.testing.assert_close(
                getattr(tr, name)[1, 0, :, t], ours.detach(), rtol=0, atol=ATOL
            )


def test_layer_input_is_previous_h_and_dropout_mask_is_captured() -> None:
    torch.manual_seed(0)
    lstm = nn.LSTM(4, 6, num_layers=3, bidirectional=True, dropout=0.5, batch_first=True)
    x = torch.randn(3, 7, 4)
    tr = trace_lstm(lstm.eval(), x)
    for n in (1, 2):
        below = torch.cat([tr.h[n - 1, 0], tr.h[n - 1, 1]], dim=-1)  # (B, T, 2H)
        assert torch.equal(tr.inputs[n], below)
    assert torch.equal(tr.inputs[0], x)
    tr = trace_lstm(lstm.train(), x)
    below = torch.cat([tr.h[0, 0], tr.h[0, 1]], dim=-1)
    kept = tr.inputs[1] != 0
    assert 0.2 < kept.float().mean() < 0.8  # about half of the units dropped
    torch.testing.assert_close(tr.inputs[1][kept], 2 * below[kept])  # survivors scaled by 1/(1-p)


def assert_gradients_unchanged(kind: type[nn.RNNBase], tracer, trace) -> None:
    """Training mode with dropout: a traced and an untraced run give the same gradients, bit for
    bit, and the trace itself is detached data."""
    torch.manual_seed(0)
    module = kind(3, 4, num_layers=2, bidirectional=True, dropout=0.3, batch_first=True).train()
    x = torch.randn(2, 5, 3, requires_grad=True)
    grads = []
    for traced in (False, True):
        module.zero_grad()
        x.grad = None
        torch.manual_seed(7)
        with tracer(module) if traced else contextlib.nullcontext():
            out, hidden = module(x)
        last = hidden[-1] if isinstance(hidden, tuple) else hidden  # c, or a GRU's h
        (out.square().sum() + last.sum()).backward()
        grads.append([x.grad.clone()] + [p.grad.clone() for p in module.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not trace(module, x).h.requires_grad


def test_gradients_unchanged() -> None:
    assert_gradients_unchanged(nn.LSTM, trace_lstms, trace_lstm)


class _Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.LSTM(3, 4, batch_first=True)
        self.decoder = nn.LSTM(4, 5, num_layers=2)
        self.head = nn.Linear(5, 1)

    def forward(self, x):
        h, _ = self.encoder(x)
        h, _ = self.decoder(h.transpose(0, 1))
        h, _ = self.decoder(h[:, :, :4].contiguous())  # a second call of the same module
        return self.head(h)


def test_any_model_names_and_calls_and_cleanup() -> None:
    torch.manual_seed(0)
    model = _Model().eval()
    x = torch.randn(2, 6, 3)
    ref = model(x)
    with trace_lstms(model) as rec:
        y = model(x)
    assert torch.equal(y, ref)
    assert [(t.name, t.call) for t in rec] == [("encoder", 0), ("decoder", 0), ("decoder", 1)]
    assert rec["decoder"] is rec[2] and rec.calls("decoder") == [rec[1], rec[2]]
    assert isinstance(rec["encoder"], LSTMTrace)
    assert rec["decoder"].h.shape == (2, 1, 2, 6, 5)
    assert not any("forward" in vars(m) for m in model.modules())  # nothing left behind
    with pytest.raises(KeyError, match="no LSTM call recorded for 'head'"):
        rec["head"]
    # two calls on unrelated inputs: not joined, the last call is shown and the sentence says so
    joined, how = rec.joined("decoder")
    assert joined is rec[2] and "do not continue each other" in how


def test_only_watches_the_named_lstms() -> None:
    torch.manual_seed(0)
    model = _Model().eval()
    x = torch.randn(2, 6, 3)
    with trace_lstms(model, only=["decoder"]) as rec:
        model(x)
    assert rec.names == ["decoder"] and rec.watched == ("decoder",)
    assert "forward" not in vars(model.encoder)
    with trace_lstms(model, only=lambda name: name.startswith("enc")) as rec:
        model(x)
    assert rec.names == ["encoder"]
    with pytest.raises(ValueError, match="not nn.LSTMs of _Model"):
        with trace_lstms(model, only=["head"]):
            pass


def test_cleanup_after_an_error_inside_the_block() -> None:
    lstm = nn.LSTM(3, 4)
    with pytest.raises(RuntimeError), trace_lstms(lstm):
        lstm(torch.randn(5, 2, 7))  # wrong input_size: nn.LSTM's own error
    assert "forward" not in vars(lstm)


def test_unbatched_input() -> None:
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    x = torch.randn(6, 3)
    out, (h, c) = lstm(x)
    tr = trace_lstm(lstm, x)
    assert tr.h.shape == (2, 2, 1, 6, 4)
    torch.testing.assert_close(tr.output()[0], out, rtol=0, atol=ATOL)
    torch.testing.assert_close(tr.final_states()[1][:, :, 0], c.view(2, 2, 4), rtol=0, atol=ATOL)


def test_helpers_and_errors() -> None:
    torch.manual_seed(0)
    lstm = nn.LSTM(2, 3, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(2, 5, 2)
    packed = pack_padded_sequence(x, torch.tensor([5, 3]), batch_first=True)
    tr = trace_lstm(lstm, packed)
    top = tr.layer(-1, 1)
    assert top.layer == 1 and top.direction == 1 and top.h.shape == (2, 5, 3)
    assert tr.unpadded("f", 1, layer=0).shape == (3, 3)
    with pytest.raises(IndexError, match="direction must be in"):
        tr.layer(0, 2)
    with pytest.raises(ValueError, match="what must be one of"):
        tr.unpadded("x", 0)


def _pass_weights_as(own_chunk: bool, monkeypatch) -> None:
    """Make tracing pass each layer's weights as on a GPU (``own_chunk=True``) or as on the CPU."""
    from course_utils import tracing

    original = tracing._layer_weights
    monkeypatch.setattr(
        tracing, "_layer_weights", lambda m, layer, _: original(m, layer, own_chunk)
    )


def bias_free_trace(
    kind: type[nn.RNNBase], tracer, bidirectional: bool, own_chunk: bool, monkeypatch
):
    """A 3-layer module without biases, traced with its weights passed as on the CPU or a GPU:
    outputs and final states equal to an untraced run (1e-6), weights untouched. (module, trace)."""
    _pass_weights_as(own_chunk, monkeypatch)
    torch.manual_seed(0)
    module = kind(3, 5, num_layers=3, bias=False, bidirectional=bidirectional, batch_first=True)
    x = torch.randn(4, 7, 3)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    with torch.no_grad():
        ref_out, ref_hidden = module(x)
        with tracer(module) as rec:
            out, hidden = module(x)
    tr = rec[0]
    torch.testing.assert_close((out, hidden), (ref_out, ref_hidden), atol=1e-6, rtol=0)
    torch.testing.assert_close(tr.output(), ref_out, atol=1e-6, rtol=0)
    assert all(torch.equal(v, module.state_dict()[k]) for k, v in before.items())
    return module, tr


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("own_chunk", [False, True])  # True: the weights as passed on a GPU
def test_bias_free_stacks_match_nn_lstm(bidirectional: bool, own_chunk: bool, monkeypatch) -> None:
    """bias=False with several layers: every layer's h, the output and (h_n, c_n) are nn.LSTM's."""
    lstm, tr = bias_free_trace(nn.LSTM, trace_lstms, bidirectional, own_chunk, monkeypatch)
    torch.testing.assert_close(tr.h, tr.o * tr.c.tanh(), atol=1e-6, rtol=0)
    # each lower layer: a one-layer nn.LSTM with that layer's weights, fed what the layer received
    for layer in range(3):
        single = nn.LSTM(tr.inputs[layer].shape[-1], 5, bias=False, batch_first=True,
                         bidirectional=bidirectional)  # fmt: skip
        for d in range(tr.num_directions):
            sfx = "_reverse" if d else ""
            for kind in ("ih", "hh"):
                w = getattr(lstm, f"weight_{kind}_l{layer}{sfx}")
                getattr(single, f"weight_{kind}_l0{sfx}").data.copy_(w)
        with torch.no_grad():
            expected, _ = single(tr.inputs[layer])
        got = torch.cat([tr.h[layer, d] for d in range(tr.num_directions)], dim=-1)
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    assert "forward" not in vars(lstm)


def test_own_chunk_weights_keep_gradients_flowing(monkeypatch) -> None:
    """On a GPU each layer's weights are views of a fresh buffer: the gradients still reach the
    module's parameters, the same as without tracing (checked on the CPU with that same path)."""
    _pass_weights_as(True, monkeypatch)
    torch.manual_seed(1)
    lstm = nn.LSTM(3, 4, num_layers=2, bias=False, bidirectional=True)
    x = torch.randn(6, 2, 3)
    lstm(x)[0].square().sum().backward()
    expected = [p.grad.clone() for p in lstm.parameters()]
    lstm.zero_grad()
    with trace_lstms(lstm):
        lstm(x)[0].square().sum().backward()
    for p, g in zip(lstm.parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, g, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_parallel_cell_scan_equals_the_loop(bidirectional: bool) -> None:
    """The GPU's log-depth scan of c gives the CPU loop's c (packed lengths, both directions)."""
    from course_utils.tracing import _cell_scan, _cell_scan_parallel

    torch.manual_seed(2)
    D, L, H, B, T = (2 if bidirectional else 1), 2, 3, 4, 11
    f = torch.rand(T, B, L * D, H)
    ig = torch.randn(T, B, L * D, H)
    c0 = torch.randn(L * D, B, H)
    lengths = torch.tensor([11, 5, 1, 8])
    expected = _cell_scan(f, ig.clone(), c0, lengths, D)  # both fill ig with c in place
    torch.testing.assert_close(_cell_scan_parallel(f, ig.clone(), c0, lengths, D), expected)
    # the loop is the recurrence, c_t = f_t c_{t-1} + (i*g)_t, step by step (forward direction)
    c = c0.transpose(0, 1)[:, 0::D]
    for t in range(T):
        c = f[t, :, 0::D] * c + ig[t, :, 0::D]
        torch.testing.assert_close(expected[t, :, 0::D], c)


def test_a_subclass_with_its_own_forward_is_refused() -> None:
    class Doubling(nn.LSTM):
        def forward(self, x, hx=None):
            return super().forward(2 * x, hx)

    class Plain(nn.LSTM):  # no forward of its own: traced like nn.LSTM
        pass

    model = nn.Sequential(Doubling(2, 3, batch_first=True))
    with pytest.raises(TypeError, match="subclass of nn.LSTM with its own forward"):
        with trace_lstms(model):
            pass
    assert "forward" not in vars(model[0])
    torch.manual_seed(0)
    plain = Plain(2, 3, batch_first=True)
    x = torch.randn(2, 4, 2)
    torch.testing.assert_close(trace_lstm(plain, x).output(), plain(x)[0])


def _projected_reference(lstm: nn.LSTM, tr: LSTMTrace) -> None:
    """h is h_cell projected by W_hr, per layer and direction; h_cell = o * tanh(c)."""
    torch.testing.assert_close(tr.h_cell, tr.o * tr.c.tanh(), atol=1e-6, rtol=0)
    for layer in range(tr.num_layers):
        for d in range(tr.num_directions):
            w_hr = getattr(lstm, f"weight_hr_l{layer}" + ("_reverse" if d else ""))
            projected = tr.h_cell[layer, d] @ w_hr.detach().T  # (B, T, P)
            torch.testing.assert_close(tr.h[layer, d], projected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("packed", [False, True])
def test_projected_lstm_equals_the_module(bidirectional: bool, packed: bool) -> None:
    """proj_size > 0: h is the projected state (P units), c and gates H units; every number is the
    module's own to 1e-6 (output, h_n, c_n) and h = h_cell W_hr^T in every layer and direction."""
    torch.manual_seed(3)
    lstm = nn.LSTM(3, 6, num_layers=3, proj_size=2, bidirectional=bidirectional).eval()
    D = 2 if bidirectional else 1
    x = torch.randn(7, 4, 3)  # (T, B, F): batch_first=False
    lengths = torch.tensor([7, 2, 5, 4])
    inp = pack_padded_sequence(x, lengths, enforce_sorted=False) if packed else x
    hx = (torch.randn(3 * D, 4, 2), torch.randn(3 * D, 4, 6))
    with torch.no_grad():
        ref_out, (ref_h, ref_c) = lstm(inp, hx)
        with trace_lstms(lstm) as rec:
            out, (h_n, c_n) = lstm(inp, hx)
    tr = rec[0]
    assert tr.proj_size == 2 and tr.hidden_size == 6
    assert tr.h.shape == (3, D, 4, 7, 2) and tr.c.shape == tr.h_cell.shape == (3, D, 4, 7, 6)
    assert tr.h0.shape == (3, D, 4, 2) and tr.c0.shape == (3, D, 4, 6)
    torch.testing.assert_close((h_n, c_n), (ref_h, ref_c), atol=0, rtol=0)
    torch.testing.assert_close(
        tr.output(), _batch_first_output(ref_out, {"batch_first": False}), atol=1e-6, rtol=0
    )
    fh, fc = tr.final_states()
    torch.testing.assert_close(fh, ref_h.view(3, D, 4, 2), atol=1e-6, rtol=0)
    torch.testing.assert_close(fc, ref_c.view(3, D, 4, 6), atol=1e-6, rtol=0)
    _projected_reference(lstm, tr)
    assert tr.layer(1, D - 1).h_cell.shape == (4, 7, 6)
    assert tr.unpadded("h_cell", 1, layer=0).shape == ((2 if packed else 7), 6)


def test_projected_lstm_gates_equal_a_hand_written_cell() -> None:
    """With a projection, h_{t-1} in the recurrent product is the projected one (P units)."""
    torch.manual_seed(4)
    lstm = nn.LSTM(3, 5, proj_size=2, batch_first=True).eval()
    x = torch.randn(2, 4, 3)
    tr = trace_lstm(lstm, x)
    h, c = torch.zeros(2, 2), torch.zeros(2, 5)
    with torch.no_grad():
        for t in range(4):
            z = x[:, t] @ lstm.weight_ih_l0.T + h @ lstm.weight_hh_l0.T
            i, f, g, o = (z + lstm.bias_ih_l0 + lstm.bias_hh_l0).chunk(4, dim=-1)
            c = f.sigmoid() * c + i.sigmoid() * g.tanh()
            h = (o.sigmoid() * c.tanh()) @ lstm.weight_hr_l0.T
            torch.testing.assert_close(tr.c[0, 0, :, t], c, atol=1e-6, rtol=0)
            torch.testing.assert_close(tr.h[0, 0, :, t], h, atol=1e-6, rtol=0)


def test_trace_api_names_for_the_views() -> None:
    assert LSTMTrace.states == ("h", "c") and LSTMTrace.gates == ("i", "f", "g", "o")
    assert set(LSTMTrace.gate_names) == set(LSTMTrace.gates)
    assert LSTMTrace.gate_names["f"] == "forget gate"
    tr = trace_lstm(nn.LSTM(2, 3, num_layers=2, batch_first=True), torch.randn(2, 4, 2))
    lay = tr.layer(0)
    assert all(getattr(lay, k).shape == (2, 4, 3) for k in (*tr.states, *tr.gates))
    assert tr.h_cell is None and tr.proj_size == 0
    assert (tr.num_layers, tr.num_directions, tr.batch, tr.seq_len, tr.hidden_size) == (
        2,
        1,
        2,
        4,
        3,
    )
    with pytest.raises(AttributeError, match="a layer trace holds h, c, i, f, g, o"):
        _ = lay.r


def _seq2seq(bidirectional: bool = False) -> Seq2SeqAttention:
    torch.manual_seed(5)
    return Seq2SeqAttention(
        target_kind="symbols", vocab_size=6, hidden_size=8, num_layers=2, embed_dim=4,
        bidirectional=bidirectional,
    ).eval()  # fmt: skip


@pytest.mark.parametrize("bidirectional", [False, True])
def test_a_decoder_called_once_per_step_is_joined_into_one_sequence(bidirectional: bool) -> None:
    """Seq2SeqAttention's decoder LSTM runs once per output step (decode_step): its calls are one
    sequence, equal to one call of the decoder over the steps' inputs from the first state."""
    model = _seq2seq(bidirectional)
    source = torch.randint(1, 6, (3, 5))
    decoder_inputs = torch.randint(1, 6, (3, 4))
    with torch.no_grad(), trace_lstms(model) as rec:
        model(source, decoder_inputs, torch.tensor([5, 3, 4]))
    assert rec.names == ["encoder", "decoder"] and len(rec.calls("decoder")) == 4
    joined, how = rec.joined("decoder")
    assert how == (
        "assembled from 4 calls of 1 step(s) each: each call continued from the previous call's "
        "final state"
    )
    assert joined.seq_len == 4 and joined.call == 3 and joined.lengths.tolist() == [4, 4, 4]
    last, first = rec.calls("decoder")[-1], rec.calls("decoder")[0]
    assert torch.equal(joined.h0, first.h0) and torch.equal(joined.c_n, last.c_n)
    with torch.no_grad():
        out, (h_n, c_n) = model.decoder(joined.inputs[0], (first.h0[:, 0], first.c0[:, 0]))
    torch.testing.assert_close(joined.output(), out, atol=1e-6, rtol=0)
    torch.testing.assert_close(joined.h_n[:, 0], h_n, atol=1e-6, rtol=0)
    torch.testing.assert_close(joined.h, joined.o * joined.c.tanh(), atol=1e-6, rtol=0)
    for k, call in enumerate(rec.calls("decoder")):  # step k of the join is call k
        assert torch.equal(joined.f[:, :, :, k], call.f[:, :, :, 0])


def test_join_refuses_calls_that_do_not_continue_each_other() -> None:
    torch.manual_seed(6)
    lstm = nn.LSTM(2, 3, batch_first=True)
    x = torch.randn(2, 3, 2)
    with trace_lstms(lstm) as rec:
        _, state = lstm(x[:, :1])
        lstm(x[:, 1:], state)  # continues: joined
        lstm(x[:, 1:])  # starts from zeros again: not a continuation
    calls = rec.calls("")
    assert LSTMTrace.join(calls[:2]) is not None
    assert LSTMTrace.join(calls) is None
    assert LSTMTrace.join(calls[:1]) is None
    joined, _ = LSTMTrace.join(calls[:2])
    torch.testing.assert_close(joined.output(), lstm(x)[0], atol=1e-6, rtol=0)
    packed = pack_padded_sequence(x, torch.tensor([3, 2]), batch_first=True)
    with trace_lstms(lstm) as rec:
        _, state = lstm(packed)
        lstm(packed, state)
    assert LSTMTrace.join(rec.calls("")) is None  # variable lengths: refused
