"""inspect() gives a meaningful view of every model notebooks 01-09 train (small and untrained).

Meaningful: the states of its recurrent layers and/or the weights of its attention, recorded from the
forward pass, and equal to what the model computed. Each case builds the model as its notebook does
(smaller), inspects it, and checks the views it must have and one number against the model itself.
The course_utils models are imported; the few classes a notebook defines itself (01's adder, 02's
two stacked designs, 03's packed stack and hand-set step counter) are rebuilt here in their shape.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from course_utils.attention_pooling import POOLINGS, PooledLSTM
from course_utils.bert_lstm import ClsLSTM, MeanPoolLSTM, TokenLSTM
from course_utils.inspector import inspect
from course_utils.layer_pooling import LAYER_POOLINGS, make_classifier
from course_utils.mha_models import (
    AttentionOnly,
    LSTMAttention,
    LSTMAttentionFFN,
    LSTMAttentionLM,
    LSTMOnly,
    SeedLSTMWithAttention,
    SeedLSTMWithAttentionAndFFN,
    SeedLSTMWithAttentionEmbed,
)
from course_utils.seq2seq import SeedBahdanauModel, Seq2SeqAttention


@pytest.fixture(autouse=True)
def _seeded_one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def _shown(ins, kind: str) -> list[str]:
    return [name for name, k in ins.kinds.items() if k == kind]


def _every_view_draws(ins) -> None:
    for name, view in ins.views.items():
        assert view.static_png().startswith(b"\x89PNG"), name
        assert view.error.value == "", f"{name}: {view.error.value}"


class Adder(nn.Module):
    """Notebook 01's adder: one recurrent layer (LSTM, GRU) and a linear head on its last step."""

    def __init__(self, cell: type[nn.Module], hidden: int, **kwargs) -> None:
        super().__init__()
        self.rnn = cell(2, hidden, batch_first=True, **kwargs)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1]).squeeze(-1)


@pytest.mark.parametrize(
    "cell, kind, kwargs",
    [
        (nn.LSTM, "lstm", {}),
        (nn.GRU, "gru", {}),
        (nn.RNN, "rnn", {}),  # 01's rival
        (nn.RNN, "rnn", {"nonlinearity": "relu"}),  # 01's IRNN
    ],
)
def test_01_recurrent_adders(cell, kind, kwargs):
    model = Adder(cell, 8, **kwargs)
    x = torch.randn(4, 10, 2)
    ins = inspect(model, x)
    assert _shown(ins, kind) == ["rnn"] and _shown(ins, "pattern") == ["rnn (patterns)"]
    trace = ins.records["rnn"]
    assert trace.h.shape == (1, 1, 4, 10, 8)
    with torch.no_grad():
        torch.testing.assert_close(trace.output(), model.rnn(x)[0])  # the module's own states

    _every_view_draws(ins)


class Stacked(nn.Module):
    """02's LastStep / EveryStep and 03's Packed: two stacked LSTMs read at the last step, at every
    step, or packed to each sequence's length."""

    def __init__(self, read: str) -> None:
        super().__init__()
        self.read = read
        self.lstm1, self.lstm2 = nn.LSTM(3, 8, batch_first=True), nn.LSTM(8, 4, batch_first=True)
        self.head = nn.Linear(4, 1)

    def forward(self, x, lengths=None):
        if self.read == "packed":
            x = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            _, (h_n, _) = self.lstm2(self.lstm1(x)[0])
            return self.head(h_n[-1])
        seq = self.lstm2(self.lstm1(x)[0])[0]
        return self.head(seq[:, -1] if self.read == "last" else seq)


@pytest.mark.parametrize("read", ["last", "every", "packed"])
def test_02_03_stacked_designs(read):
    x, lengths = torch.randn(3, 7, 3), torch.tensor([7, 4, 2])
    ins = inspect(Stacked(read), x, lengths) if read == "packed" else inspect(Stacked(read), x)
    assert _shown(ins, "lstm") == ["lstm1", "lstm2"]
    expected = [7, 4, 2] if read == "packed" else [7, 7, 7]
    assert ins.records["lstm2"].lengths.tolist() == expected
    _every_view_draws(ins)


def test_03_the_hand_set_step_counter_counts_in_its_cell_state():
    counter = nn.LSTM(3, 1, batch_first=True)
    with torch.no_grad():
        for p in counter.parameters():
            p.zero_()
        counter.bias_ih_l0.copy_(torch.tensor([10.0, 10.0, math.atanh(0.1), 10.0]))  # i f g o
    x, lengths = torch.randn(3, 8, 3), torch.tensor([8, 5, 3])
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    ins = inspect(counter, packed)
    c = ins.records[""].c[0, 0, :, :, 0]  # (B, T): the one unit's c
    counted = 10 * c[torch.arange(3), lengths - 1]
    torch.testing.assert_close(counted, lengths.float(), atol=1e-2, rtol=0)  # sigmoid(10) < 1


@pytest.mark.parametrize("pooling", POOLINGS)
def test_04_05_pooled_lstms_show_states_and_attention_where_they_attend(pooling):
    model = PooledLSTM(3, 8, num_layers=2, pooling=pooling)
    x, lengths = torch.randn(4, 9, 3), torch.tensor([9, 5, 7, 3])
    ins = inspect(model, x, lengths)
    assert _shown(ins, "lstm") == ["lstm"]
    attends = pooling in ("seed", "seed_masked", "additive")
    assert bool(_shown(ins, "attention")) == attends
    if attends:
        (name,) = _shown(ins, "attention")
        weights = ins.records[name].weights  # (N, 1, 1, T)
        assert weights.shape == (4, 1, 1, 9)
        torch.testing.assert_close(weights.sum(-1), torch.ones(4, 1, 1))
        if pooling != "seed":  # masked: padding gets weight 0
            assert float(weights[3, 0, 0, 3:].abs().max()) == 0.0
    _every_view_draws(ins)


def test_06_seq2seq_decoder_is_one_sequence_and_its_attention_one_alignment():
    model = Seq2SeqAttention(
        target_kind="values", input_size=1, hidden_size=8, num_layers=2, embed_dim=4
    )
    source, lengths = torch.randn(3, 6, 1), torch.tensor([6, 4, 5])
    decoder_inputs = torch.randn(3, 12)
    ins = inspect(model, source, decoder_inputs, lengths)
    assert "decoder" in _shown(ins, "lstm") and "encoder" in _shown(ins, "lstm")
    decoder = ins.records["decoder"]
    assert decoder.seq_len == 12  # 12 calls of one step, joined
    assert "assembled from 12 calls" in ins.notes["decoder"]
    attention = ins.records["attention"]
    assert attention.weights.shape == (3, 1, 12, 6)
    assert "assembled from 12 calls" in ins.notes["attention"]
    with torch.no_grad():
        expected = model.eval()(source, decoder_inputs, lengths).attention  # (B, T, S)
    torch.testing.assert_close(attention.weights[:, 0], expected)
    assert float(attention.weights[1, 0, :, 4:].abs().max()) == 0.0  # padded source steps
    _every_view_draws(ins)


def test_06_uniform_attention_is_shown_as_uniform_and_the_articles_model_as_one_key():
    model = Seq2SeqAttention(
        target_kind="values", input_size=1, hidden_size=8, uniform_attention=True
    )
    ins = inspect(model, torch.randn(2, 5, 1), torch.randn(2, 4))
    torch.testing.assert_close(ins.records["attention"].weights, torch.full((2, 1, 4, 5), 0.2))
    seed = SeedBahdanauModel(3, hidden_size=8)
    ins = inspect(seed, torch.randn(2, 5, 3), torch.randn(2, 1, 3))
    weights = ins.records["attention"].weights
    assert weights.shape == (2, 1, 1, 1) and torch.all(weights == 1.0)  # the article's bug: S = 1
    assert {"encoder", "decoder"} <= set(_shown(ins, "lstm"))


@pytest.mark.parametrize(
    "build, x",
    [
        (lambda: SeedLSTMWithAttention(3, 8, 2, 2), torch.randn(2, 6, 3)),
        (lambda: SeedLSTMWithAttentionEmbed(11, 4, 8, 2, 2), torch.randint(0, 11, (2, 6))),
        (lambda: SeedLSTMWithAttentionAndFFN(3, 8, 2, 2, ffn_hidden_size=8), torch.randn(2, 6, 3)),
        (lambda: LSTMAttention(3, 8, causal=True), torch.randn(2, 6, 3)),
        (lambda: LSTMAttentionLM(11, 4, 8), torch.randint(0, 11, (2, 6))),
        (lambda: LSTMAttentionFFN(3, 8), torch.randn(2, 6, 3)),
    ],
)
def test_07_lstm_with_multi_head_attention(build, x):
    ins = inspect(build(), x)
    assert _shown(ins, "lstm") == ["lstm"] and _shown(ins, "attention") == ["attention"]
    weights = ins.records["attention"].weights
    assert weights.shape == (2, 2, 6, 6)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 2, 6))
    _every_view_draws(ins)


def test_07_baselines_each_show_their_one_part():
    x = torch.randn(2, 6, 3)
    assert set(inspect(LSTMOnly(3, 8), x).kinds.values()) == {"lstm", "pattern"}
    assert set(inspect(AttentionOnly(3, 8), x).kinds.values()) == {"attention"}


def test_08_lstms_over_bert_features():
    x, mask = torch.randn(3, 7, 16), torch.ones(3, 7, dtype=torch.bool)
    mask[1, 4:] = False
    assert _shown(inspect(ClsLSTM(16, 8), torch.randn(3, 16)), "lstm") == ["lstm"]
    ins = inspect(TokenLSTM(16, (8, 6)), x, mask)
    assert _shown(ins, "lstm") == ["lstm1", "lstm2"]
    assert ins.records["lstm2"].lengths.tolist() == [7, 4, 7]  # packed: each sentence its length
    assert _shown(inspect(MeanPoolLSTM(16, 8), x, mask), "lstm") == ["lstm"]


@pytest.mark.parametrize("name", LAYER_POOLINGS)
def test_09_every_layer_pooling_shows_its_weights_or_states_over_layers(name):
    model = make_classifier(name, num_layers=4, hidden_size=16, lstm_hidden=8)
    cls = torch.randn(3, 5, 16)  # (N, L + 1, H)
    ins = inspect(model, cls)
    if name in ("seed LSTMPooling", "BiLSTM final states"):
        assert _shown(ins, "lstm") == ["pooling.lstm"]
        assert ins.records["pooling.lstm"].seq_len >= 4  # the layers are its time steps
    else:
        weights = ins.records["pooling"].weights  # (N, 1, 1, L + 1): weights over layers
        assert weights.shape == (3, 1, 1, 5)
        torch.testing.assert_close(weights.sum(-1), torch.ones(3, 1, 1))
        if name == "last-layer CLS":
            assert weights[0, 0, 0].tolist() == [0, 0, 0, 0, 1]
    _every_view_draws(ins)
