"""Tests of course_utils.encoders: offline loading, fast failure, batched cached feature extraction."""

from __future__ import annotations

import time

import pytest
import torch

from course_utils import encoders
from course_utils.encoders import (
    DEFAULT_ENCODER,
    Encoded,
    Encoder,
    EncoderUnavailableError,
    encode,
    load_encoder,
    tiny_encoder,
)

TEXTS = [
    "Profits did not fall, but sales dropped sharply.",
    "Costs rose.",
    "Although debt grew, Acme's margins increased strongly this quarter.",
    "Costs rose.",  # a repeat: encoded once
]


@pytest.fixture()
def tiny() -> Encoder:
    """A tiny random BERT (2 layers, 4 heads, 16 wide) with the real tokenizer; a fresh cache."""
    return tiny_encoder()


def test_encode_matches_a_direct_model_call(tiny):
    out = encode(tiny, TEXTS, progress=False, attentions=True)
    batch = tiny.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = tiny.model(**batch, output_hidden_states=True, output_attentions=True)
    mask = batch["attention_mask"]
    n, t = mask.shape
    assert out.input_ids.shape == (n, t) and out.input_ids.dtype == torch.int64
    assert torch.equal(out.input_ids, batch["input_ids"])
    assert torch.equal(out.attention_mask, mask)
    assert out.last_hidden_state.shape == (n, t, 16)
    torch.testing.assert_close(
        out.last_hidden_state, ref.last_hidden_state * mask[..., None], atol=1e-5, rtol=1e-4
    )
    assert out.cls_per_layer.shape == (n, 3, 16)
    for layer in range(3):
        torch.testing.assert_close(
            out.cls_per_layer[:, layer], ref.hidden_states[layer][:, 0], atol=1e-5, rtol=1e-4
        )
    torch.testing.assert_close(out.pooler_output, ref.pooler_output, atol=1e-5, rtol=1e-4)
    assert out.mean_per_layer.shape == (n, 3, 16)
    for layer in range(3):  # mean pooling at every depth, over the real tokens only
        m = mask[..., None].float()
        expected = (ref.hidden_states[layer] * m).sum(1) / m.sum(1)
        torch.testing.assert_close(out.mean_per_layer[:, layer], expected, atol=1e-5, rtol=1e-4)
    assert out.select([1]).mean_per_layer.shape == (1, 3, 16)
    assert out.attentions.shape == (n, 2, 4, t, t)
    real = mask.bool()
    for i in range(n):
        k = int(real[i].sum())
        torch.testing.assert_close(
            out.attentions[i, :, :, :k, :k],
            torch.stack(ref.attentions, 1)[i, :, :, :k, :k],
            atol=1e-5,
            rtol=1e-4,
        )
        assert out.attentions[i, :, :, k:].abs().sum() == 0  # padding rows removed
    # every attention row of a real token sums to 1 over the real tokens
    k = int(out.lengths[1])
    rows = out.attentions[1, :, :, :k, :k].sum(-1)
    torch.testing.assert_close(rows, torch.ones_like(rows))


def test_cache_encodes_each_text_once(tiny):
    calls = []
    forward = tiny.model.forward
    tiny.model.forward = lambda *a, **k: (calls.append(k["input_ids"].shape[0]), forward(*a, **k))[
        1
    ]
    first = encode(tiny, TEXTS, progress=False, batch_size=2)
    assert sum(calls) == 3  # three distinct texts
    again = encode(tiny, TEXTS[::-1], progress=False)
    assert sum(calls) == 3  # nothing recomputed
    assert torch.equal(
        again.last_hidden_state.flip(0)[:, : first.input_ids.shape[1]], first.last_hidden_state
    )
    encode(tiny, TEXTS[:1], progress=False, attentions=True)  # attentions were not cached yet
    assert sum(calls) == 4
    tiny.clear_cache()
    encode(tiny, TEXTS[:1], progress=False)
    assert sum(calls) == 5


def test_tokens_remove_padding_and_specials(tiny):
    out = encode(tiny, TEXTS, progress=False)
    assert out.tokens(1) == ["[CLS]", "costs", "rose", ".", "[SEP]"]
    assert out.tokens(1, skip_special=True) == ["costs", "rose", "."]
    assert out.lengths.tolist()[1] == 5
    sub = out.select([1, 0])
    assert isinstance(sub, Encoded) and sub.texts == [TEXTS[1], TEXTS[0]]
    with pytest.raises(IndexError, match="out of range"):
        out.tokens(10)


def test_seed_style_padding_lets_bert_see_pads(tiny):
    masked = encode(tiny, TEXTS[:2], progress=False, pad_to=24)
    seed = encode(tiny, TEXTS[:2], progress=False, pad_to=24, use_attention_mask=False)
    assert masked.input_ids.shape == seed.input_ids.shape == (2, 24)
    assert torch.equal(masked.attention_mask, seed.attention_mask)  # still marks real tokens
    k = int(masked.lengths[1])
    # with a mask, padding changes nothing and pad states are 0; without one, both differ
    short = encode(tiny, TEXTS[1:2], progress=False)
    torch.testing.assert_close(masked.last_hidden_state[1, :k], short.last_hidden_state[0, :k])
    assert masked.last_hidden_state[1, k:].abs().sum() == 0
    assert seed.last_hidden_state[1, k:].abs().sum() > 0
    assert (seed.last_hidden_state[1, :k] - short.last_hidden_state[0, :k]).abs().max() > 1e-3


def test_bad_input_is_explained(tiny):
    with pytest.raises(TypeError, match="wrap it"):
        encode(tiny, "one string", progress=False)
    with pytest.raises(ValueError, match="needs pad_to"):
        encode(tiny, TEXTS, progress=False, use_attention_mask=False)


def test_a_random_pooler_is_not_pretrained(tiny):
    """Stored or drawn at load, a pooler whose biases are all 0 has never been trained."""
    assert tiny.pooler_in_checkpoint and not tiny.pooler_pretrained
    with torch.no_grad():
        tiny.model.pooler.dense.bias.add_(0.01)
    assert tiny.pooler_pretrained
    assert not Encoder.from_parts(
        tiny.model, tiny.tokenizer, missing_keys=["pooler.dense.bias"]
    ).pooler_pretrained


def test_sdpa_model_is_refused():
    with pytest.raises(ValueError, match="attn_implementation='eager'"):
        tiny_encoder(attn_implementation="sdpa")


def test_unknown_name_fails_fast_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(EncoderUnavailableError, match=DEFAULT_ENCODER):
        load_encoder("no-such-org/no-such-bert-model")
    assert time.perf_counter() - start < 10


def test_unknown_name_fails_fast_when_hub_unreachable(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://10.255.255.1:9")  # unroutable: connect never answers
    monkeypatch.setattr(encoders, "HUB_PROBE_TIMEOUT", 1.0)
    ok, reason = encoders.hub_reachable(timeout=1.0)
    assert not ok and reason
    start = time.perf_counter()
    with pytest.raises(EncoderUnavailableError, match="hf download"):
        load_encoder("no-such-org/no-such-bert-model")
    assert time.perf_counter() - start < 10


def test_packaged_default_encoder_offline():
    """The real all-MiniLM-L6-v2: 6 layers, 12 heads, 384 wide, eager; its pooler is stored, untrained."""
    enc = load_encoder()
    assert load_encoder() is enc  # loaded once
    assert (enc.num_layers, enc.num_heads, enc.hidden_size) == (6, 12, 384)
    assert enc.model.config._attn_implementation == "eager"
    assert not enc.model.training
    assert enc.missing_keys == () and enc.pooler_in_checkpoint
    # stored, never trained: every bias exactly 0 (sentence-transformers pools by the token mean)
    assert torch.count_nonzero(enc.model.pooler.dense.bias) == 0 and not enc.pooler_pretrained
    out = encode(enc, ["Profits did not fall."], attentions=True, progress=False)
    assert out.tokens(0, skip_special=True) == ["profits", "did", "not", "fall", "."]
    assert out.attentions.shape == (1, 6, 12, 7, 7)
    assert out.cls_per_layer.shape == (1, 7, 384)
    # [1] of the seed is the pooler: tanh(dense([CLS])), not the [CLS] state itself
    pooler = enc.model.pooler
    with torch.no_grad():
        expected = torch.tanh(pooler.dense(out.cls_per_layer[:, -1]))
    torch.testing.assert_close(out.pooler_output, expected, atol=1e-5, rtol=1e-4)
    assert (out.pooler_output - out.cls_per_layer[:, -1]).abs().max() > 0.1
