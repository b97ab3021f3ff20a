"""Tests of course_utils.transformer_attention on tiny random transformers (offline, seeded).

Each family is checked against the model's own ``output_attentions=True`` run, and the caller's
output must be the same with and without recording.
"""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
import torch
from torch import nn

from course_utils.transformer_attention import (
    ATTENTION_FIELDS,
    capture_transformer_attention,
    transformer_models,
)

transformers = pytest.importorskip("transformers")

VOCAB = 40


def _eager(model: nn.Module) -> nn.Module:
    model.set_attn_implementation("eager")  # bit-equal outputs with and without recording
    return model.eval()


def bert_config(**extra):
    return transformers.BertConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=32,
        max_position_embeddings=32,
        **extra,
    )


def gpt2_config():
    return transformers.GPT2Config(
        vocab_size=VOCAB, n_embd=16, n_layer=2, n_head=4, n_positions=32, bos_token_id=0,
        eos_token_id=0, use_cache=False,
    )  # fmt: skip


def bart():
    config = transformers.BartConfig(
        vocab_size=VOCAB, d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=32, decoder_ffn_dim=32,
        max_position_embeddings=32, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        decoder_start_token_id=2, use_cache=False,
    )  # fmt: skip
    return transformers.BartModel(config)


def t5():
    config = transformers.T5Config(
        vocab_size=VOCAB, d_model=16, d_kv=4, d_ff=32, num_layers=2, num_decoder_layers=2,
        num_heads=4, decoder_start_token_id=0, use_cache=False,
    )  # fmt: skip
    return transformers.T5Model(config)


class Wrapper(nn.Module):
    """A learner's module that calls a BertModel inside its forward."""

    def __init__(self) -> None:
        super().__init__()
        self.bert = transformers.BertModel(bert_config())
        self.head = nn.Linear(16, 2)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.bert(ids, attention_mask=mask).last_hidden_state[:, 0])


IDS = torch.randint(3, VOCAB, (2, 6), generator=torch.Generator().manual_seed(0))
MASK = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
DECODER_IDS = IDS[:, :4]
ENC_DEC = {"input_ids": IDS, "attention_mask": MASK, "decoder_input_ids": DECODER_IDS}
ENC_DEC_PARTS = [("self", False, 6, 6), ("decoder self", True, 4, 4), ("cross", False, 4, 6)]

#: name -> (build, call kwargs, recorded transformer's name, [(kind, causal, T_query, T_key)],
#: the fields of the model's own output that hold each kind's weights)
CASES = {
    "BertModel": (
        lambda: transformers.BertModel(bert_config()),
        {"input_ids": IDS, "attention_mask": MASK},
        "",
        [("self", False, 6, 6)],
        ["attentions"],
    ),
    "BertForSequenceClassification": (
        lambda: transformers.BertForSequenceClassification(bert_config()),
        {"input_ids": IDS, "attention_mask": MASK},
        "bert",
        [("self", False, 6, 6)],
        ["attentions"],
    ),
    "DistilBertModel": (
        lambda: transformers.DistilBertModel(
            transformers.DistilBertConfig(
                vocab_size=VOCAB,
                dim=16,
                n_layers=2,
                n_heads=4,
                hidden_dim=32,
                max_position_embeddings=32,
            )  # fmt: skip
        ),
        {"input_ids": IDS, "attention_mask": MASK},
        "",
        [("self", False, 6, 6)],
        ["attentions"],
    ),
    "GPT2Model": (
        lambda: transformers.GPT2Model(gpt2_config()),
        {"input_ids": IDS},
        "",
        [("self", True, 6, 6)],
        ["attentions"],
    ),
    "GPT2LMHeadModel": (
        lambda: transformers.GPT2LMHeadModel(gpt2_config()),
        {"input_ids": IDS, "attention_mask": MASK},
        "transformer",
        [("self", True, 6, 6)],
        ["attentions"],
    ),
    "BartModel": (bart, ENC_DEC, "", ENC_DEC_PARTS, list(ATTENTION_FIELDS[1:])),
    "T5Model": (t5, ENC_DEC, "", ENC_DEC_PARTS, list(ATTENTION_FIELDS[1:])),
}


def assert_same(a, b) -> None:
    """Two outputs hold the same fields with bit-equal tensors."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif hasattr(a, "keys"):
        assert list(a.keys()) == list(b.keys())
        for key in a.keys():
            assert_same(a[key], b[key])


@pytest.mark.parametrize("case", list(CASES))
def test_every_family_matches_its_own_output_attentions(case):
    build, kwargs, name, parts, fields = CASES[case]
    torch.manual_seed(0)
    model = _eager(build())
    with torch.no_grad():
        plain = model(**kwargs)
        own = model(**kwargs, output_attentions=True)
        with capture_transformer_attention(model) as rec:
            out = model(**kwargs)
    assert_same(out, plain)  # the caller gets what it gets without recording
    assert not any(out.get(f) for f in ATTENTION_FIELDS)
    assert rec.names == [name] and [r.call for r in rec] == [0] * len(parts)
    assert [(r.kind, r.causal, *r.weights.shape[-2:]) for r in rec] == parts
    # cross-attention of BartModel is listed last, in the order the record says
    for record, field in zip(rec.calls(name), fields, strict=True):
        expected = torch.stack(own[field], dim=1)  # (N, layers, heads, Tq, Tk)
        assert record.weights.shape == (2, 2, 4, *expected.shape[-2:])
        torch.testing.assert_close(record.weights, expected, atol=1e-6, rtol=0)
        above = torch.triu(torch.ones(record.weights.shape[-2:], dtype=torch.bool), diagonal=1)
        if record.causal:  # each token sees itself and earlier ones: 0 above the diagonal
            assert record.weights[..., above].abs().max() == 0
        elif record.kind == "self":
            assert record.weights[0][..., above].min() > 0
        if "attention_mask" in kwargs and record.kind != "decoder self":
            assert torch.equal(record.key_padding, MASK == 0)
    family = {"self": rec[0].family}
    assert family["self"] == (
        "encoder-decoder (BART/T5 style)"
        if case in ("BartModel", "T5Model")
        else "decoder-only (GPT-2 style)"
        if case.startswith("GPT2")
        else "BERT-style encoder"
    )


def test_a_module_that_calls_bert_inside_its_forward():
    torch.manual_seed(0)
    model = Wrapper().eval()
    _eager(model.bert)
    with torch.no_grad():
        plain = model(IDS, MASK)
        own = model.bert(IDS, attention_mask=MASK, output_attentions=True).attentions
        with capture_transformer_attention(model) as rec:
            out = model(IDS, MASK)
            model(IDS[:1], MASK[:1])
    assert torch.equal(out, plain)
    assert transformer_models(model) == {"bert": model.bert}
    assert [(r.name, r.call) for r in rec.calls("bert")] == [("bert", 0), ("bert", 1)]
    torch.testing.assert_close(rec[0].weights, torch.stack(own, 1), atol=1e-6, rtol=0)
    assert rec["bert"].weights.shape[0] == 1 and torch.equal(rec[0].key_padding, MASK == 0)
    assert not model.bert._forward_hooks and not model.bert._forward_pre_hooks  # removed


def test_encoder_decoder_calls_are_ordered_self_decoder_cross_per_call():
    torch.manual_seed(0)
    model = _eager(bart())
    with torch.no_grad(), capture_transformer_attention(model) as rec:
        model(**ENC_DEC)
        model(**ENC_DEC)
    assert [(r.call, r.kind) for r in rec.calls("")] == [
        (c, k) for c in (0, 1) for k in ("self", "decoder self", "cross")
    ]
    assert rec[""].kind == "cross" and rec[""].call == 1  # the last record of the last call


def test_attentions_the_caller_asked_for_stay_in_its_output():
    torch.manual_seed(0)
    model = _eager(transformers.BertModel(bert_config()))
    with torch.no_grad():
        own = model(IDS, output_attentions=True)
        with capture_transformer_attention(model) as rec:
            out = model(IDS, output_attentions=True)
    assert_same(out, own)
    assert len(out.attentions) == 2 and len(rec) == 1


def test_fused_attention_is_switched_to_eager_and_back():
    torch.manual_seed(0)
    model = transformers.GPT2Model(gpt2_config()).eval()
    before = model.config._attn_implementation
    assert before != "eager"
    with torch.no_grad():
        plain = model(IDS).last_hidden_state
        with capture_transformer_attention(model) as rec:
            assert model.config._attn_implementation == "eager"
            out = model(IDS).last_hidden_state
    assert model.config._attn_implementation == before
    torch.testing.assert_close(out, plain, atol=1e-5, rtol=1e-5)  # eager vs fused: rounding only
    assert rec[""].causal and rec[""].weights.shape == (2, 2, 4, 6, 6)


def test_only_and_clear_errors():
    torch.manual_seed(0)
    model = Wrapper().eval()
    with pytest.raises(ValueError, match=r"only= names \['encoder'\]"):
        with capture_transformer_attention(model, only=["encoder"]):
            pass
    lstm = nn.Sequential(nn.LSTM(4, 8), nn.Linear(8, 2))
    with pytest.raises(ValueError, match="no Hugging Face transformer found in Sequential") as err:
        with capture_transformer_attention(lstm):
            pass
    assert "LSTM x1, Linear x1" in str(err.value) and "capture_attention" in str(err.value)
    with pytest.raises(TypeError, match="expects an nn.Module"):
        with capture_transformer_attention("bert"):
            pass


def test_importing_the_module_does_not_import_transformers():
    code = (
        "import sys, course_utils.transformer_attention as t;"
        "assert 'transformers' not in sys.modules;"
        "import torch; assert t.transformer_models(torch.nn.Linear(2, 2)) == {}"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


class PositionalBert(transformers.BertModel if transformers else object):
    """A BertModel whose forward names output_attentions and return_dict (as transformers 4 did)."""

    def forward(self, input_ids, attention_mask=None, output_attentions=None, return_dict=None):
        return super().forward(
            input_ids,
            attention_mask=attention_mask,
            output_attentions=output_attentions,
            return_dict=return_dict,
        )


#: name -> (build, call args, call kwargs): BERT and GPT-2 called with their inputs by position.
TUPLE_CASES = {
    "BertModel": (lambda: transformers.BertModel(bert_config()), (IDS, MASK), {}),
    "GPT2Model": (lambda: transformers.GPT2Model(gpt2_config()), (IDS, None, MASK), {}),
    "BertForSequenceClassification": (
        lambda: transformers.BertForSequenceClassification(bert_config()),
        (IDS, MASK),
        {},
    ),
    "BartModel": (bart, (), ENC_DEC),
}


@pytest.mark.parametrize("asked", [False, True], ids=["plain", "output_attentions"])
@pytest.mark.parametrize("case", list(TUPLE_CASES))
def test_return_dict_false_gives_the_callers_tuple(case, asked):
    build, args, kwargs = TUPLE_CASES[case]
    torch.manual_seed(0)
    model = _eager(build())
    extra = {"return_dict": False, **({"output_attentions": True} if asked else {})}
    with torch.no_grad():
        plain = model(*args, **kwargs, **extra)
        own = model(*args, **kwargs, output_attentions=True)
        with capture_transformer_attention(model) as rec:
            out = model(*args, **kwargs, **extra)
    assert isinstance(out, tuple) and len(out) == len(plain)
    assert_same(out, plain)  # torch.equal on every element, attention tuples included
    field = "encoder_attentions" if case == "BartModel" else "attentions"
    torch.testing.assert_close(rec[0].weights, torch.stack(own[field], 1), atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("args", "kwargs", "asked", "as_tuple"),
    [
        ((IDS, MASK, True), {}, True, False),
        ((IDS, MASK, True, False), {}, True, True),
        ((IDS, MASK, None, False), {}, False, True),
        ((IDS, MASK), {"output_attentions": False, "return_dict": False}, False, True),
        ((IDS,), {"attention_mask": MASK}, False, False),
    ],
    ids=["attentions", "attentions-tuple", "tuple", "keywords", "mask-keyword"],
)
def test_output_attentions_and_return_dict_passed_by_position(args, kwargs, asked, as_tuple):
    torch.manual_seed(0)
    model = _eager(PositionalBert(bert_config()))
    with torch.no_grad():
        plain = model(*args, **kwargs)
        with capture_transformer_attention(model) as rec:
            out = model(*args, **kwargs)
    assert isinstance(out, tuple) == as_tuple
    assert_same(out, plain)
    if as_tuple:  # (last_hidden_state, pooler_output[, attentions, cross_attentions])
        assert (len(out) > 2) == asked
        attentions = out[2] if asked else None
    else:
        attentions = out.attentions
    assert torch.equal(rec[""].key_padding, MASK == 0)
    assert (attentions is not None) == asked
    if asked:
        torch.testing.assert_close(rec[""].weights, torch.stack(attentions, 1), atol=0, rtol=0)


def test_config_return_dict_false_gives_a_tuple():
    torch.manual_seed(0)
    model = _eager(transformers.GPT2Model(gpt2_config()))
    model.config.return_dict = False
    with torch.no_grad():
        plain = model(IDS)
        with capture_transformer_attention(model) as rec:
            out = model(IDS)
    assert isinstance(out, tuple)
    assert_same(out, plain)
    assert rec[""].weights.shape == (2, 2, 4, 6, 6)


@pytest.mark.parametrize("case", ["BertModel", "GPT2Model"])
def test_the_real_forward_with_output_attentions_by_position(case):
    """transformers 4 names output_attentions in BERT's and GPT-2's forward; 5 takes it in **kwargs."""
    build = TUPLE_CASES[case][0]
    torch.manual_seed(0)
    model = _eager(build())
    names = list(inspect.signature(model.forward).parameters)
    if "output_attentions" not in names:
        pytest.skip(f"{case}.forward takes output_attentions only by keyword here")
    values = {"input_ids": IDS, "attention_mask": MASK, "output_attentions": True}
    args = [values.get(n) for n in names[: names.index("output_attentions") + 1]]
    with torch.no_grad():
        plain = model(*args, return_dict=False)
        with capture_transformer_attention(model) as rec:
            out = model(*args, return_dict=False)
    assert_same(out, plain)
    torch.testing.assert_close(rec[""].weights, torch.stack(plain[-1], 1), atol=0, rtol=0)
