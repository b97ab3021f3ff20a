"""Pattern search (LSTMVis): a hand-set LSTM whose units are known finds the spans it should."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from course_utils.patterns import Match, find_pattern
from course_utils.tracing import trace_lstm

VOCAB = "()[]o"  # open/close of bracket A, open/close of bracket B, other
BIG = 20.0
#: Each example, as tokens; the last is shorter (padded to the longest).
SENTENCES = (
    "oo(oo)oooooo",  # A-bracket open at 2: unit 0 on at steps 2, 3, 4
    "ooooo(oo)ooo",  # same length of bracket at 5
    "[oo]ooo(oo)o",  # a B bracket (unit 1), then an A bracket at 7
    "o(oooo)oo",  # a longer A bracket at 1, then padding
)


def bracket_lstm() -> nn.LSTM:
    """Unit 0: on from "(" until ")"; unit 1: the same for "[" ... "]"; unit 2: on at "o".

    Gates are set from the input alone (no recurrent weights, no biases), so each is 0 or 1 up to
    e^-20: unit 0's input gate opens at "(" (c <- 1), its forget gate closes at "(" and ")" (c <- 0
    at ")"), its output gate is always open, so h = tanh(1) = 0.76 inside the bracket, 0 outside.
    Unit 2 forgets at every step and writes +1 at "o", -1 at a bracket: h = +-0.76.
    """
    lstm = nn.LSTM(len(VOCAB), 3, batch_first=True)
    w = torch.full((4, 3, len(VOCAB)), -BIG)  # gate (i, f, g, o), unit, token
    w[3] = BIG  # output gates always open
    w[2] = BIG  # candidate +1 ...
    for unit, (open_, close) in enumerate(("()", "[]")):
        w[0, unit, VOCAB.index(open_)] = BIG  # write at the opening bracket
        w[1, unit] = BIG  # keep ...
        w[1, unit, VOCAB.index(open_)] = -BIG  # ... except at the brackets
        w[1, unit, VOCAB.index(close)] = -BIG
    w[0, 2] = BIG  # unit 2 writes at every step, forgets at every step (w[1, 2] = -BIG)
    w[2, 2] = -BIG  # ... -1 at a bracket,
    w[2, 2, VOCAB.index("o")] = BIG  # ... +1 at "o"
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(w.reshape(12, len(VOCAB)))
        lstm.weight_hh_l0.zero_()
        lstm.bias_ih_l0.zero_()
        lstm.bias_hh_l0.zero_()
    return lstm


def bracket_trace():
    """The hand-set LSTM's trace of :data:`SENTENCES` (packed: the last example is padded)."""
    lengths = torch.tensor([len(s) for s in SENTENCES])
    x = torch.zeros(len(SENTENCES), int(lengths.max()), len(VOCAB))
    for b, sentence in enumerate(SENTENCES):
        for t, token in enumerate(sentence):
            x[b, t, VOCAB.index(token)] = 1.0
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    return trace_lstm(bracket_lstm(), packed)


@pytest.fixture(scope="module")
def trace():
    return bracket_trace()


def test_the_hand_set_units_do_what_they_say(trace):
    h = trace.h[0, 0]  # (B, T, 3)
    assert torch.all(h[0, 2:5, 0] > 0.75) and torch.all(h[0, 5:, 0].abs() < 1e-6)
    assert torch.all(h[2, 0:3, 1] > 0.75) and torch.all(h[2, 3:, 1].abs() < 1e-6)
    assert torch.all(h[0, [0, 1, 3, 4], 2] > 0.75) and torch.all(h[0, [2, 5], 2] < -0.75)


def test_a_bracket_finds_the_other_brackets_at_their_exact_steps(trace):
    pattern = find_pattern(trace, example=0, start=2, stop=5, threshold=0.5)
    assert pattern.units == (0,)
    assert pattern.length == 3 and pattern.layer == 0 and pattern.what == "h"
    assert pattern.matches == (
        Match(example=1, start=5, stop=8, overlap=1.0, units_on=(0,)),
        Match(example=2, start=7, stop=10, overlap=1.0, units_on=(0,)),
        Match(example=3, start=1, stop=4, overlap=1.0, units_on=(0,)),
    )  # the B bracket (unit 1), plain text (unit 2) and steps inside longer brackets: no match


def test_overlap_is_jaccard_and_extra_units_count_against_a_span(trace):
    # inside example 3's long bracket, past its "(": units 0 and 2 are on
    pattern = find_pattern(trace, example=3, start=2, stop=4, threshold=0.5)
    assert pattern.units == (0, 2)
    best = pattern.matches[0]
    assert best.overlap == 1.0 and best.units_on == (0, 2)
    half = [m for m in pattern.matches if m.overlap == 0.5]  # a "(" step (unit 2 off) or plain text
    assert half and all(m.units_on in ((0,), (2,)) for m in half)
    assert [m.overlap for m in pattern.matches] == sorted(
        (m.overlap for m in pattern.matches), reverse=True
    )


def test_matches_never_overlap_each_other_the_selection_or_padding(trace):
    pattern = find_pattern(trace, example=0, start=6, stop=8, threshold=0.5, top=50)
    assert all(m.overlap > 0 for m in pattern.matches)
    spans = [(pattern.example, pattern.start, pattern.stop)] + [
        (m.example, m.start, m.stop) for m in pattern.matches
    ]
    for k, (b, a, e) in enumerate(spans):
        assert e <= int(trace.lengths[b])
        for b2, a2, e2 in spans[k + 1 :]:
            assert b != b2 or e <= a2 or e2 <= a


def test_outside_the_brackets_the_pattern_is_another_unit(trace):
    """The search can fail: plain text selects unit 2, and its matches are plain text too."""
    pattern = find_pattern(trace, example=0, start=6, stop=9, threshold=0.5, top=3)
    assert pattern.units == (2,)
    assert pattern.matches[0] == Match(example=0, start=9, stop=12, overlap=1.0, units_on=(2,))


def test_the_cell_state_and_the_top_layer_by_default(trace):
    pattern = find_pattern(trace, example=0, start=2, stop=5, threshold=0.5, what="c", top=1)
    assert pattern.units == (0,) and pattern.matches[0].example == 1


def test_a_threshold_above_every_value_says_the_highest_one(trace):
    with pytest.raises(ValueError, match=r"highest any unit stays above there is 0\.76"):
        find_pattern(trace, example=0, start=2, stop=5, threshold=0.9)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"example": 3, "start": 7, "stop": 10}, ValueError, "example 3 has 9 real steps"),
        ({"example": 0, "start": 4, "stop": 4}, ValueError, "start < stop"),
        ({"example": 4, "start": 0, "stop": 1}, IndexError, r"example must be in \[0, 4\)"),
        ({"layer": 1}, IndexError, r"layer must be in \[0, 1\)"),
        ({"direction": 1}, IndexError, "unidirectional"),
        ({"what": "f"}, ValueError, "gates are not searched"),
    ],
)
def test_clear_errors(trace, kwargs, error, message):
    args = {"example": 0, "start": 2, "stop": 5, "threshold": 0.5} | kwargs
    with pytest.raises(error, match=message):
        find_pattern(trace, **args)


def test_a_trace_with_h_only_works_like_a_gru_trace(trace):
    class HOnly:  # what a GRUTrace offers: states ("h",) and no c
        states = ("h",)
        h, lengths, layer = trace.h, trace.lengths, trace.layer

    assert find_pattern(HOnly(), example=0, start=2, stop=5, threshold=0.5).units == (0,)
    with pytest.raises(ValueError, match=r"states \('h',\)"):
        find_pattern(HOnly(), example=0, start=2, stop=5, threshold=0.5, what="c")


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
def test_a_gru_trace_backward_direction_and_a_projected_lstm_c():
    from course_utils.gru_tracing import trace_gru

    torch.manual_seed(0)
    gru = nn.GRU(5, 16, 2, batch_first=True, bidirectional=True)
    trace = trace_gru(gru, torch.randn(4, 10, 5))
    pattern = find_pattern(trace, example=0, start=2, stop=4, threshold=0.02, direction=1)
    h = trace.h[-1, 1]  # (B, T, H): the top layer's backward direction
    assert pattern.units == tuple(torch.nonzero((h[0, 2:4] > 0.02).all(0)).flatten().tolist())
    for m in pattern.matches:
        assert m.units_on == tuple(
            torch.nonzero((h[m.example, m.start : m.stop] > 0.02).all(0)).flatten().tolist()
        )
        both = set(m.units_on) & set(pattern.units)
        assert m.overlap == len(both) / len(set(m.units_on) | set(pattern.units))
    with pytest.raises(ValueError, match=r"states \('h',\)"):
        find_pattern(trace, example=0, start=2, stop=4, threshold=0.02, what="c")
    projected = trace_lstm(nn.LSTM(5, 16, proj_size=8, batch_first=True), torch.randn(3, 9, 5))
    units = find_pattern(projected, example=0, start=1, stop=3, threshold=0.0, what="c").units
    assert units and max(units) < 16  # c keeps the 16 cell units (h has 8)
