"""Tests of course_utils.bert_views on a tiny random BERT (fast) with the real tokenizer."""

from __future__ import annotations

import warnings

import matplotlib as mpl
import numpy as np
import pytest
import torch

from course_utils.bert_views import (
    CAUSAL_NOTE,
    attention_weights,
    bert_attention_explorer,
    plot_bert_head,
    plot_layer_head_grid,
    plot_token_lines,
    transformer_explorer,
)
from course_utils.encoders import Encoder, encode, tiny_encoder
from course_utils.style import STYLE

TEXTS = ["Profits did not fall, but sales dropped sharply.", "Costs rose."]


@pytest.fixture(scope="module")
def tiny() -> Encoder:
    return tiny_encoder()


@pytest.fixture(scope="module")
def encoded(tiny):
    return encode(tiny, TEXTS, attentions=True, progress=False)


def test_attention_weights_remove_padding_and_specials(encoded):
    w, tokens = attention_weights(encoded, 1)
    assert w.shape == (2, 4, 5, 5) and tokens == ["[CLS]", "costs", "rose", ".", "[SEP]"]
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
    w2, tokens2 = attention_weights(encoded, 1, skip_special=True)
    assert tokens2 == ["costs", "rose", "."] and w2.shape == (2, 4, 3, 3)
    np.testing.assert_allclose(w2, w[:, :, 1:4, 1:4])
    w3, _ = attention_weights(encoded, 1, skip_special=True, renormalize=True)
    np.testing.assert_allclose(w3.sum(-1), 1.0, atol=1e-5)


def test_plot_head_labels_tokens_and_shares_one_scale(encoded):
    fig = plot_bert_head(encoded, 1, 1, 2)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == encoded.tokens(1)
    assert ax.get_title() == "layer 1, head 2"  # 0-based, as encoded.attentions[:, layer, head]
    assert ax.images[0].norm.vmin == 0 and ax.images[0].norm.vmax == 1
    w, _ = attention_weights(encoded, 1)
    np.testing.assert_allclose(ax.images[0].get_array(), w[1, 2], atol=1e-6)
    mean = plot_bert_head(encoded, 1, 0, None).axes[0]
    np.testing.assert_allclose(mean.images[0].get_array(), w[0].mean(0), atol=1e-6)
    fast = plot_bert_head(encoded, 1, 0, 0, text_labels=True).axes[0]
    assert [t.get_text() for t in fast.texts][::2] == encoded.tokens(1)


def test_grid_is_one_image_with_every_head(encoded):
    fig = plot_layer_head_grid(encoded, 0)
    ax = fig.axes[0]
    w, tokens = attention_weights(encoded, 0)
    t = len(tokens)
    mosaic = np.ma.filled(ax.images[0].get_array(), np.nan)
    assert mosaic.shape == (2 * (t + 1) - 1, 4 * (t + 1) - 1)
    np.testing.assert_allclose(mosaic[t + 1 :, 3 * (t + 1) :], w[1, 3], atol=1e-6)
    assert [x.get_text() for x in ax.get_xticklabels()] == ["0", "1", "2", "3"]  # 0-based
    assert [y.get_text() for y in ax.get_yticklabels()] == ["0", "1"]
    one = plot_layer_head_grid(encoded, 0, layers=[1]).axes[0]
    assert [y.get_text() for y in one.get_yticklabels()] == ["1"]


def test_token_lines_draw_one_line_per_visible_weight(encoded):
    fig = plot_token_lines(encoded, 1, 0, 0, token=2)
    ax = fig.axes[0]
    lines = ax.collections[0].get_segments()
    assert 1 <= len(lines) <= 5 and all(seg[0][1] == 2 for seg in lines)  # all from query 2
    assert ax.get_title() == "layer 0, head 0: query -> key"
    assert [t.get_text() for t in ax.texts[::2]] == encoded.tokens(1)


def test_views_explain_bad_input(tiny, encoded):
    plain = encode(tiny, TEXTS, progress=False)
    with pytest.raises(ValueError, match="attentions=True"):
        plot_bert_head(plain, 0, 0, 0)
    with pytest.raises(IndexError, match="layer must be in 0..1"):
        plot_bert_head(encoded, 0, 2, 0)
    with pytest.raises(IndexError, match="head must be in 0..3"):
        plot_token_lines(encoded, 0, 0, 4)


def _shown(ex):
    """The explorer's visible main axes (both views live on the figure; one is hidden)."""
    return next(ax for ax in ex.figure.axes if ax.get_visible())


def _shown_texts(ex) -> list[str]:
    return [t.get_text() for t in _shown(ex).texts if t.get_visible()]


def test_explorer_redraws_for_controls_and_typed_text(tiny):
    ex = bert_attention_explorer(tiny, TEXTS)
    assert ex.static_png()[:4] == b"\x89PNG"
    assert _shown_texts(ex)[:3] == ["[CLS]", "profits", "did"]
    assert ex.controls["layer"].value == 0 and ex.controls["head"].value == 0  # 0-based
    ex.controls["layer"].value = 1
    ex.controls["head"].value = "mean"  # mean of heads: a menu entry of its own
    assert "layer 1, mean of heads" in _shown(ex).get_title()
    ex.controls["own"].value = "Debt did not grow."
    texts = _shown_texts(ex)
    assert "debt" in texts and "profits" not in texts and ex.error.value == ""
    ex.controls["view"].value = "lines"
    ex.controls["hide_special"].value = True
    assert _shown(ex).get_title() == (
        "layer 1, mean of heads\n[CLS]/[SEP] hidden; the other lines are not rescaled: query -> key"
    )
    assert _shown_texts(ex) == ["debt", "did", "not", "grow", "."] * 2
    assert len(ex.redraw_seconds) == 7  # typing also clears the menu: one more redraw


def test_explorer_updates_in_place_with_the_right_data(tiny):
    """Redraws reuse the figure's artists, and what they show equals the views' own data."""
    ex = bert_attention_explorer(tiny, TEXTS)
    first = ex.figure.axes[:]
    ex.controls["sentence"].value = 1
    ex.controls["layer"].value = 1
    ex.controls["head"].value = 2
    encoded = encode(tiny, TEXTS, attentions=True, progress=False)
    w, tokens = attention_weights(encoded, 1)
    image = _shown(ex).images[0]
    np.testing.assert_allclose(image.get_array(), w[1, 2], atol=1e-6)
    assert image.norm.vmin == 0 and image.norm.vmax == 1  # one scale for every view
    assert _shown_texts(ex) == tokens * 2
    ex.controls["view"].value = "lines"
    fresh = plot_token_lines(encoded, 1, 1, 2).axes[0].collections[0]
    shown = _shown(ex).collections[0]
    assert len(shown.get_segments()) == len(fresh.get_segments())
    for a, b in zip(shown.get_segments(), fresh.get_segments(), strict=True):
        np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(shown.get_colors(), fresh.get_colors())
    ex.controls["view"].value = "heatmap"
    assert ex.figure.axes == first and ex.error.value == ""  # no axes built again


def test_explorer_stays_without_layout_engine_under_the_global_course_style(tiny):
    """After use_course_style(), savefig hands a figure without layout engine constrained layout
    (it restores "none" by reading rcParams): slower redraws, and a warning. The explorer undoes it."""
    with mpl.rc_context(STYLE), warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning in a redraw stops it before it is recorded
        ex = bert_attention_explorer(tiny, TEXTS)
        ex.controls["layer"].value = 1
        assert ex.figure.get_layout_engine() is None  # built without one
        ex.controls["view"].value = "lines"
    assert len(ex.redraw_seconds) == 3 and ex.error.value == ""
    assert ex.figure.get_layout_engine() is None  # and still without one after the redraws


def test_explorer_picked_sentence_wins_over_typed_text_and_the_menu_follows(tiny):
    ex = bert_attention_explorer(tiny, TEXTS)
    menu, typed = ex.controls["sentence"], ex.controls["own"]
    typed.value = "Rates rose again"
    assert menu.index is None  # the menu names no listed sentence while a typed one is drawn
    shown = [t.get_text() for t in ex.figure.axes[0].texts if t.get_visible()]
    assert "rates" in shown
    menu.value = 1  # picking a sentence draws it and clears the typed text
    assert typed.value == ""
    shown = [t.get_text() for t in ex.figure.axes[0].texts if t.get_visible()]
    assert "costs" in shown and "rates" not in shown
    ex.controls["view"].value = "lines"
    ex.controls["hide_special"].value = True
    assert "not rescaled" in ex.figure.axes[2].get_title()


# transformer_explorer: the same canvas over any recorded transformer attention


def _record(kind="self", causal=False, n_q=5, n_k=5, padding=None, n=2):
    from course_utils.transformer_attention import TransformerAttention

    g = torch.Generator().manual_seed(0)
    scores = torch.randn(n, 2, 3, n_q, n_k, generator=g)  # (N, layers, heads, Tq, Tk)
    if causal:
        scores = scores.masked_fill(torch.ones(n_q, n_k, dtype=torch.bool).triu(1), -torch.inf)
    if padding is not None:
        scores = scores.masked_fill(padding[:, None, None, None, :], -torch.inf)
    family = "decoder-only (GPT-2 style)" if causal else "BERT-style encoder"
    return TransformerAttention("enc", 0, kind, causal, scores.softmax(-1), padding, family)


def _labels(ax, axis: str) -> list[str]:
    """The visible token labels of the heatmap: rows ("y") or columns ("x", rotated texts)."""
    shown = [t for t in ax.texts if t.get_visible()]
    return [t.get_text() for t in shown if (t.get_rotation() == 90) == (axis == "x")]


def test_transformer_explorer_is_0_based_and_drops_padding():
    padding = torch.tensor([[False] * 5, [False, False, False, True, True]])
    record = _record(padding=padding)
    tokens = [list("abcde"), list("vwxyz")]
    ex = transformer_explorer(record, tokens=tokens)
    layer, head = ex.controls["layer"], ex.controls["head"]
    assert (layer.min, layer.max, layer.value) == (0, 1, 0)
    assert head.options[0] == ("mean", "mean") and head.value == 0
    assert [v for _, v in head.options[1:]] == [0, 1, 2]
    ex.controls["example"].value = 1
    layer.value, head.value = 1, 2
    ax = _shown(ex)
    assert ax.get_title() == "layer 1, head 2"
    w = record.weights[1, 1].numpy()  # (heads, T, T)
    np.testing.assert_allclose(ax.images[0].get_array(), w[2, :3, :3], atol=1e-6)
    assert _labels(ax, "y") == list("vwx") and _labels(ax, "x") == list("vwx")
    head.value = "mean"
    np.testing.assert_allclose(ax.images[0].get_array(), w.mean(0)[:3, :3], atol=1e-6)
    assert ax.get_title() == "layer 1, mean of heads" and ex.error.value == ""


def test_transformer_explorer_shows_causal_attention_as_such():
    record = _record(causal=True)
    ex = transformer_explorer(record, tokens=list("abcde"))
    ax = _shown(ex)
    assert ax.get_title() == f"layer 0, head 0\n{CAUSAL_NOTE}" and "causal" in CAUSAL_NOTE
    image = ax.images[0].get_array()
    above = np.triu(np.ones((5, 5), dtype=bool), 1)
    assert np.array_equal(np.ma.getmaskarray(image), above)  # grey (masked), not a weight of 0
    np.testing.assert_allclose(image.data[~above], record.weights[0, 0, 0].numpy()[~above])
    assert "decoder-only" in ex.children[0].value
    ex.controls["view"].value = "lines"
    segments = _shown(ex).collections[0].get_segments()
    assert segments and all(seg[1][1] <= seg[0][1] for seg in segments)  # keys at or before


def test_transformer_explorer_cross_attention_has_queries_down_and_keys_across():
    padding = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    record = _record(kind="cross", n_q=3, n_k=6, padding=padding)
    ex = transformer_explorer(
        record, tokens=[list("abcdef"), list("uvwxyz")], query_tokens=["<s>", "A", "B"]
    )
    ax = _shown(ex)
    assert ax.images[0].get_array().shape == (3, 6)
    assert _labels(ax, "y") == ["<s>", "A", "B"] and _labels(ax, "x") == list("abcdef")
    ex.controls["example"].value = 1  # padding keys dropped, the decoder's rows kept
    assert ax.images[0].get_array().shape == (3, 4) and _labels(ax, "x") == list("uvwx")
    assert "cross-attention" in ex.children[0].value


def test_transformer_explorer_windows_long_inputs_and_updates_in_place():
    record = _record(n_q=80, n_k=80, n=1)
    ex = transformer_explorer(record, max_steps=16, window_start=10)
    axes = ex.figure.axes[:]
    ax = _shown(ex)
    assert ax.images[0].get_array().shape == (16, 16) and _labels(ax, "x")[0] == "10"
    assert "positions 10-25 of 80 shown" in ex.children[0].value
    for view in ("lines", "heatmap"):
        ex.controls["view"].value = view
    for h in ("mean", 1, 2, 0):
        ex.controls["head"].value = h
    ex.controls["layer"].value = 1
    assert ex.figure.axes == axes and ex.figure.get_layout_engine() is None
    times = sorted(ex.redraw_seconds[1:])
    print(f"transformer_explorer median redraw: {1e3 * times[len(times) // 2]:.0f} ms")


def test_transformer_explorer_explains_bad_input():
    record = _record()
    with pytest.raises(ValueError, match="example 0 has 5 positions but 3 labels"):
        transformer_explorer(record, tokens=list("abc"))
    with pytest.raises(ValueError, match="example must be in 0..1"):
        transformer_explorer(record, example=2)


def test_transformer_explorer_hides_special_tokens_when_it_knows_them():
    record = _record()
    tokens = ["[CLS]", "a", "b", "c", "[SEP]"]
    assert "hide_special" not in transformer_explorer(record, tokens=tokens).controls
    ex = transformer_explorer(record, tokens=tokens, special_tokens=["[CLS]", "[SEP]", "[PAD]"])
    ex.controls["hide_special"].value = True
    ax = _shown(ex)
    assert _labels(ax, "x") == ["a", "b", "c"] and "[CLS]/[SEP] hidden" in ax.get_title()
    np.testing.assert_allclose(ax.images[0].get_array(), record.weights[0, 0, 0, 1:4, 1:4])
