"""Tracing must agree with nn.LSTM exactly, in every supported variant, and change nothing."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

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


def _build(cfg: dict, seed: int):
    torch.manual_seed(seed)
    dropout = cfg["dropout"] if cfg["num_layers"] > 1 else 0.0
    lstm = nn.LSTM(
        cfg["input_size"],
        cfg["hidden_size"],
        num_layers=cfg["num_layers"],
        bidirectional=cfg["bidirectional"],
        batch_first=cfg["batch_first"],
        bias=cfg["bias"],
        dropout=dropout,
    ).train(cfg["train"])
    B, T, D = cfg["batch"], cfg["seq_len"], 2 if cfg["bidirectional"] else 1
    x = torch.randn(B, T, cfg["input_size"])
    lengths = torch.randint(1, T + 1, (B,)) if cfg["packed"] else torch.full((B,), T)
    lengths[0] = T  # pad_packed_sequence pads to the longest length
    hx = None
    if cfg["given_hx"]:
        shape = (cfg["num_layers"] * D, B, cfg["hidden_size"])
        hx = (torch.randn(shape), torch.randn(shape))
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


CONFIGS = [_random_config(random.Random(k)) for k in range(24)] + [
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


@pytest.mark.parametrize("k", range(len(CONFIGS)))
def test_trace_matches_nn_lstm(k: int) -> None:
    cfg = CONFIGS[k]
    lstm, inp, hx, lengths = _build(cfg, seed=k)
    torch.manual_seed(100 + k)
    ref_out, (ref_h, ref_c) = lstm(inp, hx)
    torch.manual_seed(100 + k)  # same dropout draws
    with trace_lstms(lstm) as tracer:
        out, (h_n, c_n) = lstm(inp, hx)
    tr = tracer[0]
    # tracing changes nothing, not even the dropout masks
    torch.testing.assert_close(
        _batch_first_output(out, cfg), _batch_first_output(ref_out, cfg), rtol=0, atol=0
    )
    torch.testing.assert_close((h_n, c_n), (ref_h, ref_c), rtol=0, atol=0)
    L, D, B, T, H = tr.h.shape
    assert (L, D, B, T, H) == (
        cfg["num_layers"],
        2 if cfg["bidirectional"] else 1,
        cfg["batch"],
        int(lengths.max()),
        cfg["hidden_size"],
    )
    for name in ("c", "i", "f", "g", "o"):
        assert getattr(tr, name).shape == (L, D, B, T, H)
    # the traced top-layer h is nn.LSTM's output; the traced final h and c are (h_n, c_n)
    torch.testing.assert_close(tr.output(), _batch_first_output(ref_out, cfg), rtol=0, atol=ATOL)
    fh, fc = tr.final_states()
    torch.testing.assert_close(fh, ref_h.view(L, D, B, H), rtol=0, atol=ATOL)
    torch.testing.assert_close(fc, ref_c.view(L, D, B, H), rtol=0, atol=ATOL)
    # padded steps are zero, lengths recorded
    assert torch.equal(tr.lengths, lengths)
    pad = ~tr.mask()
    for name in ("h", "c", "i", "f", "g", "o"):
        assert not getattr(tr, name)[:, :, pad].any()
    # the LSTM equations hold step by step: h = o * tanh(c)
    torch.testing.assert_close(tr.h, tr.o * tr.c.tanh(), rtol=0, atol=ATOL)


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


def test_gradients_unchanged() -> None:
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True, dropout=0.3, batch_first=True).train()
    x = torch.randn(2, 5, 3, requires_grad=True)
    grads = []
    for traced in (False, True):
        lstm.zero_grad()
        x.grad = None
        torch.manual_seed(7)
        if traced:
            with trace_lstms(lstm):
                out, (h, c) = lstm(x)
        else:
            out, (h, c) = lstm(x)
        (out.square().sum() + c.sum()).backward()
        grads.append([x.grad.clone()] + [p.grad.clone() for p in lstm.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not trace_lstm(lstm, x).h.requires_grad  # traces are detached data


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
    with trace_lstms(model) as tracer:
        y = model(x)
    assert torch.equal(y, ref)
    assert [t.name for t in tracer] == ["encoder", "decoder", "decoder"]
    assert tracer["decoder"] is tracer[2]
    assert isinstance(tracer["encoder"], LSTMTrace)
    assert tracer["decoder"].h.shape == (2, 1, 2, 6, 5)
    assert not any("forward" in vars(m) for m in model.modules())  # nothing left behind
    with pytest.raises(KeyError, match="no trace of an LSTM named 'head'"):
        tracer["head"]


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
    with pytest.raises(ValueError, match="proj_size"):
        trace_lstm(nn.LSTM(2, 4, proj_size=2), x)
    with pytest.raises(ValueError, match="contains no nn.LSTM"):
        with trace_lstms(nn.GRU(2, 3)):
            pass
    with pytest.raises(TypeError, match="expects an nn.LSTM"):
        trace_lstm(nn.GRU(2, 3), x)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("own_chunk", [False, True])  # True: the weights as passed on a GPU
def test_bias_free_stacks_match_nn_lstm(bidirectional: bool, own_chunk: bool, monkeypatch) -> None:
    """bias=False with several layers: every layer's h, the output and (h_n, c_n) are nn.LSTM's."""
    from course_utils import tracing

    original = tracing._layer_weights
    monkeypatch.setattr(
        tracing, "_layer_weights", lambda m, layer, _: original(m, layer, own_chunk)
    )
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 5, num_layers=3, bias=False, bidirectional=bidirectional, batch_first=True)
    x = torch.randn(4, 7, 3)
    before = {k: v.clone() for k, v in lstm.state_dict().items()}
    with torch.no_grad():
        ref_out, (ref_h, ref_c) = lstm(x)
        with trace_lstms(lstm) as tracer:
            out, (h_n, c_n) = lstm(x)
    tr = tracer[0]
    torch.testing.assert_close(out, ref_out, atol=1e-6, rtol=0)
    torch.testing.assert_close((h_n, c_n), (ref_h, ref_c), atol=1e-6, rtol=0)
    torch.testing.assert_close(tr.output(), ref_out, atol=1e-6, rtol=0)
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
    assert all(torch.equal(v, lstm.state_dict()[k]) for k, v in before.items())
    assert "forward" not in vars(lstm)


def test_own_chunk_weights_keep_gradients_flowing(monkeypatch) -> None:
    """On a GPU each layer's weights are views of a fresh buffer: the gradients still reach the
    module's parameters, the same as without tracing (checked on the CPU with that same path)."""
    from course_utils import tracing

    original = tracing._layer_weights
    monkeypatch.setattr(tracing, "_layer_weights", lambda m, layer, _: original(m, layer, True))
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
    f = torch.rand(L * D, H, T * B)
    ig = torch.randn(L * D, H, T * B)
    c0 = torch.randn(L * D, B, H)
    lengths = torch.tensor([11, 5, 1, 8])
    torch.testing.assert_close(
        _cell_scan_parallel(f, ig, c0, lengths, D, B), _cell_scan(f, ig, c0, lengths, D, B)
    )


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
