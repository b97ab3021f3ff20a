"""capture_attention: per-head weights equal attention computed by hand, outputs unchanged, no traces."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course_utils.capture import attention_modules, capture_attention, expose_attention


def hand_attention(
    mha: nn.MultiheadAttention, query, key, *, attn_mask=None, key_padding_mask=None
):
    """Per-head weights (N, H, L, S) from the module's own projections (batch-first inputs)."""
    n, q_len, e = query.shape
    s_len = key.shape[1]
    heads, d = mha.num_heads, e // mha.num_heads
    if mha._qkv_same_embed_dim:
        w_q, w_k, _ = mha.in_proj_weight.chunk(3)
    else:
        w_q, w_k = mha.q_proj_weight, mha.k_proj_weight
    b_q, b_k, _ = mha.in_proj_bias.chunk(3) if mha.in_proj_bias is not None else (None, None, None)
    q = (
        nn.functional.linear(query, w_q, b_q).view(n, q_len, heads, d).transpose(1, 2)
    )  # (N, H, L, d)
    k = nn.functional.linear(key, w_k, b_k).view(n, s_len, heads, d).transpose(1, 2)  # (N, H, S, d)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)  # (N, H, L, S)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    if key_padding_mask is not None:
        scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
    return scores.softmax(dim=-1)


def _inputs(batch_first: bool, n=3, t=6, e=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, t, e, generator=g)  # (N, T, E)
    return x, (x if batch_first else x.transpose(0, 1).contiguous())


MASKS = ["none", "causal_bool", "float", "padding", "both"]


def _masks(kind: str, n=3, t=6):
    attn_mask = kpm = None
    if kind in ("causal_bool", "both"):
        attn_mask = torch.ones(t, t, dtype=torch.bool).triu(1)
    if kind == "float":
        attn_mask = torch.randn(t, t, generator=torch.Generator().manual_seed(3))
    if kind in ("padding", "both"):
        kpm = torch.arange(t).unsqueeze(0) >= torch.tensor([t, 4, 2]).unsqueeze(1)  # (N, T)
    return attn_mask, kpm


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("call", ["default", "need_weights_false", "per_head"])
@pytest.mark.parametrize("mode", ["train", "eval_no_grad"])
def test_weights_match_hand_computation_and_outputs_unchanged(batch_first, mask_kind, call, mode):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=batch_first)
    with torch.no_grad():
        mha.in_proj_bias.normal_()
    mha.train(mode == "train")
    x_bf, x = _inputs(batch_first)
    attn_mask, kpm = _masks(mask_kind)
    kwargs = {"attn_mask": attn_mask, "key_padding_mask": kpm}
    if call == "need_weights_false":
        kwargs["need_weights"] = False
    if call == "per_head":
        kwargs["average_attn_weights"] = False
    ctx = torch.no_grad() if mode == "eval_no_grad" else torch.enable_grad()
    with ctx:
        expected_out, expected_w = mha(x, x, x, **kwargs)
        with capture_attention(mha) as cap:
            out, w = mha(x, x, x, **kwargs)
    torch.testing.assert_close(out, expected_out)  # what the caller sees is unchanged
    if expected_w is None:
        assert w is None
    else:
        assert w.shape == expected_w.shape
        torch.testing.assert_close(w, expected_w)
    hand = hand_attention(mha, x_bf, x_bf, attn_mask=attn_mask, key_padding_mask=kpm)
    got = cap[""].weights
    assert got.shape == (3, 2, 6, 6)
    torch.testing.assert_close(got, hand.detach(), atol=1e-6, rtol=1e-5)
    if kpm is not None:
        assert torch.equal(cap[""].key_padding_mask, kpm)
        assert got[kpm[:, None, None, :].expand_as(got)].abs().max() == 0


def test_positional_need_weights_and_unbatched_input():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 4)
    x = torch.randn(5, 8)  # unbatched (T, E)
    with capture_attention(mha) as cap:
        out, w = mha(x, x, x, None, False)  # need_weights=False passed positionally
    assert w is None and out.shape == (5, 8)
    hand = hand_attention(mha, x.unsqueeze(0), x.unsqueeze(0))
    torch.testing.assert_close(cap[""].weights, hand.detach())


def test_transformer_encoder_layer_fast_path_is_disabled_and_weights_are_right():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, 32, batch_first=True, dropout=0.0).eval()
    src = torch.randn(3, 7, 16)
    kpm = torch.zeros(3, 7, dtype=torch.bool)
    kpm[1, 5:] = True
    assert torch.backends.mha.get_fastpath_enabled()
    with torch.no_grad():  # eval + no_grad: the fused fast path would skip self_attn entirely
        plain = layer(src, src_key_padding_mask=kpm)
        with capture_attention(layer) as cap:
            assert not torch.backends.mha.get_fastpath_enabled()
            out = layer(src, src_key_padding_mask=kpm)
    assert torch.backends.mha.get_fastpath_enabled()  # restored
    torch.testing.assert_close(out[~kpm], plain[~kpm], atol=1e-5, rtol=1e-5)
    # norm_first=False: self_attn reads src itself, so the weights can be computed by hand from src.
    hand = hand_attention(layer.self_attn, src, src, key_padding_mask=kpm)
    torch.testing.assert_close(cap["self_attn"].weights, hand, atol=1e-6, rtol=1e-5)


def test_nested_models_decoder_cross_attention_and_names():
    torch.manual_seed(0)

    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList(
                [
                    nn.TransformerDecoderLayer(8, 2, 16, batch_first=False, dropout=0.0)
                    for _ in range(2)
                ]
            )

        def forward(self, tgt, memory):
            for block in self.blocks:
                tgt = block(tgt, memory)
            return tgt

    model = Wrapper().eval()
    tgt, memory = torch.randn(4, 2, 8), torch.randn(6, 2, 8)  # (T, N, E) and (S, N, E)
    with torch.no_grad(), capture_attention(model) as cap:
        model(tgt, memory)
    assert cap.names == [
        "blocks.0.self_attn",
        "blocks.0.multihead_attn",
        "blocks.1.self_attn",
        "blocks.1.multihead_attn",
    ]
    assert cap["blocks.0.self_attn"].weights.shape == (2, 2, 4, 4)
    assert cap["blocks.0.multihead_attn"].weights.shape == (
        2,
        2,
        4,
        6,
    )  # queries from tgt, keys from memory
    assert set(attention_modules(model)) == set(cap.names)


def test_separate_key_value_dims():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, kdim=5, vdim=3, batch_first=True)
    q, k, v = torch.randn(2, 4, 8), torch.randn(2, 6, 5), torch.randn(2, 6, 3)
    _, expected = mha(q, k, v, average_attn_weights=False)
    with capture_attention(mha) as cap:
        mha(q, k, v, need_weights=False)
    torch.testing.assert_close(cap[""].weights, expected.detach())


def test_repeated_calls_and_only_filter():
    torch.manual_seed(0)
    model = nn.ModuleDict({"a": nn.MultiheadAttention(8, 2), "b": nn.MultiheadAttention(8, 2)})
    x = torch.randn(3, 1, 8)
    with capture_attention(model, only=["b"]) as cap:
        model["a"](x, x, x)
        model["b"](x, x, x)
        model["b"](x[:2], x[:2], x[:2])
    assert cap.names == ["b"] and len(cap) == 2
    assert [c.weights.shape[-1] for c in cap.calls("b")] == [3, 2]
    assert cap["b"].weights.shape == (1, 2, 2, 2)  # the last call
    assert cap[0].call == 0 and cap[1].call == 1 and cap[-1] is cap["b"]
    with pytest.raises(KeyError, match="modules called: 'b'"):
        cap["a"]
    with pytest.raises(IndexError, match="call 2 of 2"):
        cap[2]
    with pytest.raises(ValueError, match="are not attention modules"):
        with capture_attention(model, only=["c"]):
            pass


def test_gradients_still_flow_and_returned_average_keeps_grad():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    x = torch.randn(2, 5, 8, requires_grad=True)
    with capture_attention(mha) as cap:
        out, w = mha(x, x, x)
        (out.sum() + w.sum()).backward()
    assert x.grad is not None and w.requires_grad
    assert not cap[""].weights.requires_grad  # stored weights are detached


def test_everything_is_restored_even_after_an_error():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    before = (dict(mha._forward_hooks), dict(mha._forward_pre_hooks), dict(mha.__dict__))
    with pytest.raises(RuntimeError, match="boom"):
        with capture_attention(mha):
            raise RuntimeError("boom")
    assert torch.backends.mha.get_fastpath_enabled()
    with capture_attention(mha) as cap:
        with pytest.raises(AssertionError, match="key shape"):
            mha(torch.randn(2, 5, 8), torch.randn(2, 5, 7), torch.randn(2, 5, 8))  # bad key size
        mha(torch.randn(2, 5, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 8))  # still works after
    assert len(cap) == 1
    after = (dict(mha._forward_hooks), dict(mha._forward_pre_hooks), dict(mha.__dict__))
    assert after[0] == before[0] == {} and after[1] == before[1] == {}
    assert set(after[2]) == set(before[2])  # nothing stashed on the module


def test_nested_captures_both_record():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    x = torch.randn(2, 5, 8)
    expected_out, _ = mha(x, x, x, need_weights=False)
    with capture_attention(mha) as outer, capture_attention(mha) as inner:
        out, w = mha(x, x, x, need_weights=False)
    assert w is None
    torch.testing.assert_close(out, expected_out)
    torch.testing.assert_close(outer[""].weights, inner[""].weights)


def test_clear_error_without_attention_modules():
    with pytest.raises(ValueError, match="no attention module found in LSTM"):
        with capture_attention(nn.LSTM(3, 4)):
            pass
    with pytest.raises(TypeError, match="expects an nn.Module"):
        with capture_attention("model"):
            pass


def test_is_causal_hint_with_a_causal_mask():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, dropout=0.0).eval()
    src = torch.randn(2, 5, 8)
    mask = nn.Transformer.generate_square_subsequent_mask(5)  # float, -inf above the diagonal
    with torch.no_grad():
        plain = layer(src, src_mask=mask, is_causal=True)
        with capture_attention(layer) as cap:
            out = layer(src, src_mask=mask, is_causal=True)
    torch.testing.assert_close(out, plain, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        cap["self_attn"].weights, hand_attention(layer.self_attn, src, src, attn_mask=mask)
    )
    assert cap["self_attn"].weights.triu(diagonal=1).abs().max() == 0


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
@pytest.mark.parametrize("final_norm", [False, True])
@pytest.mark.parametrize("float_mask", [False, True])
def test_padded_transformer_encoder_returns_what_it_returns_without_capture(
    final_norm: bool, float_mask: bool
):
    """Eval mode + src_key_padding_mask: PyTorch's nested-tensor path gives zeros at padding (then
    the final norm); under capture the layers see every position, and capture restores those zeros."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, 32, batch_first=True)
    norm = nn.LayerNorm(16) if final_norm else None
    enc = nn.TransformerEncoder(layer, num_layers=2, norm=norm, enable_nested_tensor=True).eval()
    src = torch.randn(3, 6, 16)
    kpm = torch.zeros(3, 6, dtype=torch.bool)
    kpm[1, 4:] = True
    kpm[2, 2:] = True
    mask = torch.zeros(3, 6).masked_fill(kpm, float("-inf")) if float_mask else kpm
    with torch.no_grad():
        plain = enc(src, src_key_padding_mask=mask)  # the nested-tensor fast path
        with capture_attention(enc) as cap:
            out = enc(src, src_key_padding_mask=mask)
        pad_value = norm(torch.zeros(16)) if final_norm else torch.zeros(16)
    torch.testing.assert_close(plain[kpm], pad_value.expand(int(kpm.sum()), 16))
    torch.testing.assert_close(out, plain, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        cap["layers.0.self_attn"].weights,
        hand_attention(layer.self_attn, src, src, key_padding_mask=kpm),
    )
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in enc.modules())
    with torch.enable_grad():  # with gradients PyTorch takes the slow path: nothing to restore
        slow = enc(src, src_key_padding_mask=mask)
        with capture_attention(enc):
            torch.testing.assert_close(enc(src, src_key_padding_mask=mask), slow)


def test_only_matching_nothing_says_so_and_lists_the_modules():
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2, enable_nested_tensor=False)
    pattern = r"only= matched none of the 2 attention modules of TransformerEncoder: \['layers.0"
    with pytest.raises(ValueError, match=pattern):
        with capture_attention(enc, only=lambda name: "cross" in name):
            pass
    with pytest.raises(ValueError, match="matched none"):
        with capture_attention(enc, only=[]):
            pass


class _HandWritten(nn.Module):
    """A hand-written additive attention that exposes its weights (one query per call)."""

    exposes_attention = True

    def __init__(self, size: int) -> None:
        super().__init__()
        self.score = nn.Linear(2 * size, 1)

    def forward(self, query, keys, mask=None):
        q = query.unsqueeze(1).expand_as(keys)
        scores = self.score(torch.cat([q, keys], dim=-1)).squeeze(-1)  # (B, S)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        expose_attention(self, weights, mask=mask)
        return (weights.unsqueeze(-1) * keys).sum(1), weights


def test_hand_written_attention_is_recorded_per_call_and_joined_as_steps_by_source():
    torch.manual_seed(0)
    model = nn.ModuleDict({"attn": _HandWritten(4)})
    keys, mask = torch.randn(3, 6, 4), torch.ones(3, 6, dtype=torch.bool)
    mask[1, 4:] = False
    queries = torch.randn(5, 3, 4)
    expected = [model["attn"](q, keys, mask)[1] for q in queries]  # nothing records: free
    with capture_attention(model) as cap:
        got = [model["attn"](q, keys, mask)[1] for q in queries]
    assert [c.call for c in cap.calls("attn")] == [0, 1, 2, 3, 4]
    for e, g, c in zip(expected, got, cap.calls("attn"), strict=True):
        assert torch.equal(e, g)
        assert c.weights.shape == (3, 1, 1, 6) and torch.equal(c.weights[:, 0, 0], e)
        assert torch.equal(c.key_padding_mask, ~mask)
    joined, how = cap.joined("attn")
    assert joined.weights.shape == (3, 1, 5, 6) and joined.steps == 5
    assert torch.equal(joined.weights[:, 0], torch.stack(expected, dim=1))
    assert "assembled from 5 calls" in how
    assert cap.joined("attn")[0].weights[1, 0, :, 4:].abs().max() == 0  # padding: weight 0
    from course_utils import capture

    assert capture._LISTENERS == {}  # nothing left listening after the block


def test_calls_that_do_not_continue_each_other_are_not_joined():
    torch.manual_seed(0)
    model = _HandWritten(4)
    with capture_attention(model) as cap:
        model(torch.randn(2, 4), torch.randn(2, 6, 4))
        model(torch.randn(2, 4), torch.randn(2, 3, 4))  # another source length
    record, how = cap.joined("")
    assert record is cap[""] and "do not continue" in how


def test_repeated_self_attention_is_not_joined_into_a_false_alignment():
    torch.manual_seed(0)
    attn = nn.MultiheadAttention(8, 2, batch_first=True)
    a, b = torch.randn(2, 6, 8), torch.randn(2, 6, 8)
    with capture_attention(attn) as cap:
        attn(a, a, a)
        attn(b, b, b)  # the same layer on another input: two calls, not 12 decoder steps
    record, how = cap.joined("")
    assert record is cap[1] and record.weights.shape == (2, 2, 6, 6)
    assert "do not continue" in how
