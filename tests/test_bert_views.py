"""Tests of course_utils.bert_views on a tiny random BERT (fast) with the real tokenizer."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.bert_views import (
    attention_weights,
    bert_attention_explorer,
    plot_head,
    plot_layer_head_grid,
    plot_token_lines,
)
from course_utils.encoders import Encoder, encode, tiny_encoder

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
    fig = plot_head(encoded, 1, 1, 2)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == encoded.tokens(1)
    assert ax.images[0].norm.vmin == 0 and ax.images[0].norm.vmax == 1
    w, _ = attention_weights(encoded, 1)
    np.testing.assert_allclose(ax.images[0].get_array(), w[1, 2], atol=1e-6)
    mean = plot_head(encoded, 1, 0, None).axes[0]
    np.testing.assert_allclose(mean.images[0].get_array(), w[0].mean(0), atol=1e-6)
    fast = plot_head(encoded, 1, 0, 0, text_labels=True).axes[0]
    assert [t.get_text() for t in fast.texts][::2] == encoded.tokens(1)


def test_grid_is_one_image_with_every_head(encoded):
    fig = plot_layer_head_grid(encoded, 0)
    ax = fig.axes[0]
    w, tokens = attention_weights(encoded, 0)
    t = len(tokens)
    mosaic = np.ma.filled(ax.images[0].get_array(), np.nan)
    assert mosaic.shape == (2 * (t + 1) - 1, 4 * (t + 1) - 1)
    np.testing.assert_allclose(mosaic[t + 1 :, 3 * (t + 1) :], w[1, 3], atol=1e-6)
    assert [x.get_text() for x in ax.get_xticklabels()] == ["1", "2", "3", "4"]


def test_token_lines_draw_one_line_per_visible_weight(encoded):
    fig = plot_token_lines(encoded, 1, 0, 0, token=2)
    ax = fig.axes[0]
    lines = ax.collections[0].get_segments()
    assert 1 <= len(lines) <= 5 and all(seg[0][1] == 2 for seg in lines)  # all from query 2
    assert [t.get_text() for t in ax.texts[::2]] == encoded.tokens(1)


def test_views_explain_bad_input(tiny, encoded):
    plain = encode(tiny, TEXTS, progress=False)
    with pytest.raises(ValueError, match="attentions=True"):
        plot_head(plain, 0, 0, 0)
    with pytest.raises(IndexError, match="layer must be in 0..1"):
        plot_head(encoded, 0, 2, 0)
    with pytest.raises(IndexError, match="head must be in 0..3"):
        plot_token_lines(encoded, 0, 0, 4)


def test_explorer_redraws_for_controls_and_typed_text(tiny):
    ex = bert_attention_explorer(tiny, TEXTS)
    assert ex.static_png()[:4] == b"\x89PNG"
    ex.controls["layer"].value = 2
    ex.controls["head"].value = 0  # mean of heads
    assert "layer 2, mean of heads" in ex.figure.axes[0].get_title()
    ex.controls["own"].value = "Debt did not grow."
    texts = [t.get_text() for t in ex.figure.axes[0].texts]
    assert "debt" in texts and ex.error.value == ""
    ex.controls["view"].value = "lines"
    ex.controls["hide_special"].value = True
    assert "[CLS]" not in [t.get_text() for t in ex.figure.axes[0].texts]
    assert len(ex.redraw_seconds) == 6
