"""Heads grid, single-head heatmap and the head explorer: padding removed, one scale, labels, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from course_utils.head_plots import HeadView, crop, head_explorer, plot_head, plot_heads
from course_utils.style import new_figure
from tests.view_tools import assert_fresh_build_matches


def _weights(*shape, seed=0):
    return torch.softmax(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def _images(fig):
    return [ax.images[0] for ax in fig.axes if ax.images]


def test_plot_heads_crops_padding_and_shares_one_scale():
    w = _weights(3, 6, 6)
    w[2] *= 0.1  # a faint head must still be drawn on the same scale as the others
    fig = plot_heads(w, tokens=list("abcdef"), length=4)
    assert isinstance(fig, Figure)
    images = _images(fig)
    assert len(images) == 3
    assert all(im.get_array().shape == (4, 4) for im in images)
    assert len({(im.norm.vmin, im.norm.vmax) for im in images}) == 1  # one colour scale
    assert images[0].norm.vmax == pytest.approx(float(w[:, :4, :4].max()))
    first = images[0].axes
    assert [t.get_text() for t in first.get_yticklabels()] == list("abcd")
    assert first.get_ylabel().startswith("query") and first.get_xlabel().startswith("key")
    assert [ax.get_title() for ax in fig.axes if ax.images] == ["head 0", "head 1", "head 2"]


def test_plot_heads_layers_grid_and_given_figure():
    w = _weights(2, 4, 5, 5)  # (layers, heads, L, S)
    fig, _ = new_figure(figsize=(6, 3))
    fig.clear()
    out = plot_heads(w, row_titles=["L0", "L1"], fig=fig)
    assert out is fig
    assert [ax.get_title() for ax in fig.axes if ax.images][:5] == [
        "L0 head 0",
        "L0 head 1",
        "L0 head 2",
        "L0 head 3",
        "L1 head 0",
    ]


def test_plot_head_highlight_and_ax():
    fig, ax = new_figure()
    out = plot_head(
        _weights(5, 7),
        tokens=[f"t{i}" for i in range(7)],
        length=5,
        highlight_query=2,
        ax=ax,
        colorbar=False,
    )
    assert out is fig and ax.images[0].get_array().shape == (5, 5)
    (patch,) = ax.patches
    assert patch.get_xy() == (-0.5, 1.5) and patch.get_height() == 1


def test_cross_attention_keeps_queries():
    assert crop(_weights(3, 9), 5).shape == (3, 5)  # L != S: only keys are cut
    assert crop(_weights(6, 6), 4).shape == (4, 4)


def test_errors_name_the_fix():
    with pytest.raises(ValueError, match="pick an example and a head first"):
        plot_head(_weights(2, 4, 4))
    with pytest.raises(ValueError, match="pick one example first"):
        plot_heads(_weights(2, 2, 3, 4, 4))
    with pytest.raises(ValueError, match="pass one label per step"):
        plot_head(_weights(4, 4), tokens=["a", "b"])
    with pytest.raises(ValueError, match=r"length must lie in \[1, 4\]"):
        crop(_weights(4, 4), 9)
    with pytest.raises(ValueError, match="expects \\(N, heads, L, S\\)"):
        head_explorer(_weights(2, 4, 4))
    with pytest.raises(ValueError, match="not both"):
        head_explorer(_weights(2, 2, 4, 4), lengths=[4, 4], key_padding_mask=torch.zeros(2, 4))


def test_head_explorer_static_view_controls_and_padding():
    w = _weights(3, 2, 6, 6)
    mask = torch.arange(6).unsqueeze(0) >= torch.tensor([6, 3, 4]).unsqueeze(1)
    ex = head_explorer(w, key_padding_mask=mask, tokens=[list("abcdef")] * 3)
    assert ex.static_png()[:4] == b"\x89PNG"
    assert set(ex.controls) == {"example", "head", "query"}
    heat = next(ax for ax in ex.figure.axes if ax.images)
    assert heat.images[0].get_array().shape == (6, 6)
    ex.controls["query"].value = 5
    ex.controls["example"].value = 1  # 3 real steps: the view and the query slider follow
    assert ex.controls["query"].max == 2
    heat = next(ax for ax in ex.figure.axes if ax.images)
    assert heat.images[0].get_array().shape == (3, 3)
    ex.controls["head"].value = 1
    heat = next(ax for ax in ex.figure.axes if ax.images)
    np.testing.assert_allclose(heat.images[0].get_array(), w[1, 1, :3, :3].numpy())
    assert heat.get_title().startswith("example 1, head 1")
    assert len(ex.redraw_seconds) >= 4
    bars = next(ax for ax in ex.figure.axes if not ax.images)
    heights = [p.get_height() for p in bars.patches if p.get_visible()]  # padding's bars hidden
    np.testing.assert_allclose(heights, w[1, 1, 2, :3].numpy(), rtol=1e-6)
    ex.controls["example"].value = 0  # back to 6 real steps: the same axes are updated, not rebuilt
    assert len(ex.figure.axes) == 2
    heat = next(ax for ax in ex.figure.axes if ax.images)
    assert heat.images[0].get_array().shape == (6, 6)
    assert heat.get_xlim() == (-0.5, 5.5)
    assert [t.get_text() for t in heat.get_xticklabels()] == list("abcdef")
    assert sum(p.get_visible() for p in bars.patches) == 6


def test_head_explorer_is_a_view_that_a_fresh_build_redraws_alike():
    """The explorer drives a HeadView: built once and updated in place, it shows what a view
    built anew for the same values shows, to the pixel."""
    ex = head_explorer(_weights(3, 2, 6, 6), lengths=[6, 3, 4], tokens=[list("abcdef")] * 3)
    for name, value in (("query", 4), ("example", 1), ("head", 1), ("example", 2)):
        ex.controls[name].value = value
    assert isinstance(ex.view, HeadView) and ex.error.value == ""
    assert_fresh_build_matches(ex)


@pytest.mark.parametrize("n_k", [6, 12])
def test_head_explorer_cross_attention_keeps_every_query_row(n_k):
    """A decoder's 12 steps over a padded source (key lengths 4 and 6): every step can be picked,
    no row is cut by the keys' padding, rows are labelled by query_tokens (also when L == S)."""
    w = _weights(2, 1, 12, n_k)
    steps = [f"y{t}" for t in range(12)]
    ex = head_explorer(w, tokens=list("abcdefghijkl")[:n_k], query_tokens=steps, lengths=[4, 6])
    assert not ex.view.self_attention
    for example, keys in ((0, 4), (1, 6)):
        ex.controls["example"].value = example
        assert ex.controls["query"].max == 11
        ex.controls["query"].value = 11
        heat = next(ax for ax in ex.figure.axes if ax.images)
        assert heat.images[0].get_array().shape == (12, keys)
        np.testing.assert_allclose(heat.images[0].get_array(), w[example, 0, :, :keys].numpy())
        assert [t.get_text() for t in heat.get_yticklabels()] == steps
        assert [t.get_text() for t in heat.get_xticklabels()][:keys] == list("abcdef")[:keys]
        assert ex.figure.axes[1].get_title() == "query 11 (y11)"
    assert_fresh_build_matches(ex)


def test_head_explorer_self_attention_flag():
    """self_attention=False without query_tokens numbers the rows; True needs L == S."""
    square = _weights(2, 1, 6, 6)
    ex = head_explorer(square, tokens=list("abcdef"), lengths=[4, 6], self_attention=False)
    heat = next(ax for ax in ex.figure.axes if ax.images)
    assert heat.images[0].get_array().shape == (6, 4) and ex.controls["query"].max == 5
    assert [t.get_text() for t in heat.get_yticklabels()] == [str(t) for t in range(6)]
    with pytest.raises(ValueError, match="self_attention=True needs as many queries as keys"):
        head_explorer(_weights(2, 1, 3, 6), self_attention=True)
    one_list = head_explorer(square, tokens=list("abcdef"), lengths=[4, 6])  # one list for all
    assert one_list.view.self_attention and one_list.controls["query"].max == 3
    fig = plot_head(square[0, 0], length=4, query_tokens=list("uvwxyz"))
    assert fig.axes[0].images[0].get_array().shape == (6, 4)  # rows named apart: all kept
