"""Attention pictures: padding removed, shared scales, labelled axes, working widgets."""

from __future__ import annotations

import warnings
from unittest import mock

import matplotlib as mpl
import numpy as np
import pytest
import torch
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from course_utils.attention_plots import (
    RELEVANT_COLOR,
    AttentionBarsView,
    attention_explorer,
    plot_attention_bars,
    plot_attention_weights,
    remove_padding,
)
from course_utils.masks import lengths_to_mask, masked_softmax
from course_utils.plots import shared_norm
from course_utils.style import STYLE
from tests.view_tools import assert_fresh_build_matches


@pytest.fixture
def batch():
    lengths = torch.tensor([6, 3, 5])
    weights = masked_softmax(
        torch.randn(3, 8, generator=torch.Generator().manual_seed(0)), lengths_to_mask(lengths, 8)
    )
    positions = torch.tensor([[0, 4], [1, 2], [2, 3]])
    return weights, lengths, positions


def test_remove_padding_blanks_and_cuts(batch):
    weights, lengths, _ = batch
    m = remove_padding(weights, lengths)
    assert m.shape == (3, 6)  # cut to the longest real length
    assert np.isnan(m[1, 3:]).all() and not np.isnan(m[1, :3]).any()
    with pytest.raises(ValueError, match="got 2 lengths for 3 rows"):
        remove_padding(weights, lengths[:2])


def test_attention_weights_plot_has_labels_scale_and_marks(batch):
    weights, lengths, positions = batch
    norm = shared_norm([weights], vmin=0.0)
    fig = plot_attention_weights(
        weights,
        lengths=lengths,
        positions=positions,
        norm=norm,
        tokens=list("uvwxyz"),
        row_labels=["a", "b", "c"],
    )
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    image = ax.images[0]
    assert image.get_array().shape == (3, 6)
    assert image.norm is norm
    assert ax.get_xlabel() == "input step"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    assert [t.get_text() for t in ax.get_xticklabels()] == list("uvwxyz")  # tokens: the steps
    marks = ax.collections[0].get_offsets()
    assert len(marks) == 6
    with pytest.raises(ValueError, match="got 2 tokens for 6 steps"):
        plot_attention_weights(weights, lengths=lengths, tokens=["a", "b"])


def test_attention_weights_plot_can_show_the_padding(batch):
    weights, lengths, _ = batch
    unmasked = torch.softmax(torch.randn(3, 8, generator=torch.Generator().manual_seed(1)), dim=1)
    fig = plot_attention_weights(unmasked, lengths=lengths, show_padding=True)
    ax = fig.axes[0]
    image = ax.images[0]
    assert image.get_array().shape == (3, 8)  # every step drawn, padding included
    assert not np.isnan(np.ma.getdata(image.get_array())).any()
    ends = ax.collections[0].get_segments()  # one bar after each row's last real step
    assert [seg[0][0] for seg in ends] == [5.5, 2.5, 4.5]


def test_attention_weights_plot_draws_into_given_axes(batch):
    weights, lengths, _ = batch
    from course_utils.style import new_figure

    fig, axes = new_figure(1, 2)
    out = plot_attention_weights(weights[:1], lengths=lengths[:1], ax=axes[1], colorbar=False)
    assert out is fig and len(axes[1].images) == 1 and len(axes[0].images) == 0


def test_attention_bars_drop_padding_and_colour_relevant_steps(batch):
    weights, lengths, positions = batch
    fig = plot_attention_bars(weights[0], length=int(lengths[0]), positions=positions[0], ymax=0.9)
    ax = fig.axes[0]
    bars = next(c for c in ax.collections if isinstance(c, LineCollection))
    assert len(bars.get_segments()) == 6
    colours = [mpl.colors.to_hex(c) for c in bars.get_colors()]
    assert colours[0] == colours[4] == RELEVANT_COLOR and colours[1] != RELEVANT_COLOR
    assert ax.get_ylim() == (0.0, 0.9)
    with pytest.raises(ValueError, match="length must lie"):
        plot_attention_bars(weights[0], length=9)


def test_attention_explorer_redraws_and_notes_padding(batch):
    weights, lengths, positions = batch
    seed_like = weights.clone()
    seed_like[:, -1] += 0.2  # weight on a padded step, as the seed's unmasked layer gives
    ex = attention_explorer(
        {"seed": seed_like, "additive": weights},
        lengths=lengths,
        positions=positions,
        inputs=torch.rand(3, 8),
    )
    assert ex.static_png().startswith(b"\x89PNG")
    ex.controls["example"].value = 1
    texts = [t.get_text() for ax in ex.figure.axes for t in ax.texts]
    assert any(t.startswith("example 1") for t in texts)
    assert any("on padding (not drawn)" in t for t in texts if t.startswith("seed"))
    assert not any("on padding" in t for t in texts if t.startswith("additive"))
    assert len(ex.redraw_seconds) == 2 and ex.error.value == ""
    with pytest.raises(ValueError, match="same shape"):
        attention_explorer({"a": weights, "b": weights[:, :5]}, lengths=lengths)


def test_attention_explorer_draws_without_layout_warnings_under_the_course_style(batch):
    weights, lengths, positions = batch
    with mpl.rc_context(STYLE), warnings.catch_warnings():
        warnings.simplefilter("error")
        ex = attention_explorer({"a": weights}, lengths=lengths, positions=positions)
        for k in (1, 2):  # redraw() directly: a widget callback would swallow the warning
            ex.controls["example"].value = k
            ex.redraw()
    assert ex.error.value == ""


def test_attention_explorer_updates_its_artists_in_place(batch):
    weights, lengths, positions = batch
    with mpl.rc_context(STYLE):  # the notebooks' setting, under which savefig restores a layout
        ex = attention_explorer({"a": weights}, lengths=lengths, positions=positions)
        axes = list(ex.figure.axes)
        for k in (1, 2):
            with mock.patch.object(Figure, "draw", autospec=True, side_effect=Figure.draw) as draw:
                ex.controls["example"].value = k
            assert draw.call_count == 1  # savefig ran no layout engine (that draws once more)
            assert ex.figure.axes == axes  # same axes: only data and texts changed
            bars = next(c for c in axes[0].collections if isinstance(c, LineCollection))
            assert len(bars.get_segments()) == int(lengths[k])
            assert axes[0].get_xlim() == (-0.6, int(lengths[k]) - 0.4)


def test_the_sequence_end_bar_is_in_the_legend_and_one_figure_legend_collects_all(batch):
    from course_utils.attention_plots import figure_legend
    from course_utils.style import new_figure

    weights, lengths, positions = batch
    unmasked = torch.softmax(torch.randn(3, 8, generator=torch.Generator().manual_seed(1)), dim=1)
    fig = plot_attention_weights(unmasked, lengths=lengths, positions=positions, show_padding=True)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["sequence end", "relevant step"]
    fig, axes = new_figure(1, 2)
    for ax in axes:
        plot_attention_weights(
            unmasked,
            lengths=lengths,
            positions=positions,
            show_padding=True,
            ax=ax,
            colorbar=False,
            legend=False,
        )
    assert all(ax.get_legend() is None for ax in axes)
    legend = figure_legend(fig)
    assert [t.get_text() for t in legend.get_texts()] == ["sequence end", "relevant step"]


def test_bar_panel_ticks_reach_the_tallest_bar():
    w = torch.tensor([0.05, 0.45, 0.1, 0.4])
    fig = plot_attention_bars(w, ymax=0.5)
    ax = fig.axes[0]
    ticks = [t for t in ax.get_yticks() if 0 <= t <= 0.5]
    assert len(ticks) >= 3 and max(ticks) >= 0.4


def test_attention_explorer_is_a_view_that_a_fresh_build_redraws_alike(batch):
    weights, lengths, positions = batch
    ex = attention_explorer(
        {"a": weights, "b": weights.flip(1)}, lengths=lengths, positions=positions, inputs=weights
    )
    ex.controls["example"].value = 2
    assert isinstance(ex.view, AttentionBarsView) and ex.error.value == ""
    assert_fresh_build_matches(ex)
