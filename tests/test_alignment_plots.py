"""Tests of course_utils.alignment_plots: alignment matrices and the decoder-step explorer."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from course_utils.alignment_plots import (
    DecoderStepView,
    decoder_step_explorer,
    plot_alignment,
    plot_alignments,
    trim_alignment,
)
from course_utils.style import DPI, HIDPI_SCALE, CourseFigure, course_style, figure_to_png
from course_utils.widgets import FigureExplorer
from tests.view_tools import assert_fresh_build_matches


def anti_diagonal(n: int) -> torch.Tensor:
    return 0.9 * torch.eye(n).flip(1) + 0.1 / n


def dashed_boxes(ax) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle) and p.get_linestyle() == "--"]


def test_trim_alignment_removes_padding_and_checks_input():
    w = torch.rand(6, 9)
    assert trim_alignment(w, source_length=7, target_length=4).shape == (4, 7)
    with pytest.raises(ValueError, match=r"pick one example first"):
        trim_alignment(torch.rand(2, 6, 9))
    with pytest.raises(ValueError, match=r"source_length must lie in \[1, 9\], got 10"):
        trim_alignment(w, source_length=10)


def test_plot_alignment_labels_trims_and_marks_expected():
    w = torch.zeros(6, 8)
    w[:4, :5] = anti_diagonal(5)[:4]
    fig = plot_alignment(
        w,
        tokens=list("abcdefgh"),
        query_tokens=list("ABCDEF"),
        source_length=5,
        target_length=4,
        expected=[4, 3, 2, 1],
        title="t",
    )
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.images[0].get_array().shape == (4, 5)  # padding cut off
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0: a", "1: b", "2: c", "3: d", "4: e"]
    assert [t.get_text() for t in ax.get_yticklabels()][:2] == ["0: A", "1: B"]
    assert ax.get_xlabel() and ax.get_ylabel()
    assert len(dashed_boxes(ax)) == 4
    assert ax.images[0].norm.vmin == 0.0  # weights scale starts at 0


def test_plot_alignment_on_given_axes_and_label_errors():
    fig = CourseFigure()
    ax = fig.add_subplot()
    assert plot_alignment(anti_diagonal(3), ax=ax) is fig
    with pytest.raises(ValueError, match="tokens has 2 labels for 3 steps"):
        plot_alignment(anti_diagonal(3), tokens=["a", "b"])


def test_plot_alignments_share_one_colour_scale():
    a = anti_diagonal(4)
    b = 0.5 * torch.ones(4, 4) / 4
    fig = plot_alignments([a, b], titles=["sharp", "flat"], expected=[3, 2, 1, 0])
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 2
    assert images[0].norm.vmin == images[1].norm.vmin and images[0].norm.vmax == images[1].norm.vmax
    assert images[0].norm.vmax == pytest.approx(float(a.max()))
    assert all(len(dashed_boxes(ax)) == 4 for ax in fig.axes if ax.images)
    with pytest.raises(ValueError, match="must share one shape"):
        plot_alignments([a, torch.rand(3, 4)])


def _view_on(fig, attention, **kwargs) -> DecoderStepView:
    view = DecoderStepView(attention, **kwargs)
    view.build(fig)
    return view


def test_decoder_step_view_highlights_the_step():
    fig = CourseFigure()
    w = anti_diagonal(5).numpy()
    view = _view_on(
        fig, w, tokens=list("vwxyz"), query_tokens=list("yxwvu"), expected=[4, 3, 2, 1, 0]
    )
    view.update(fig, step=1)
    ax_matrix, ax_bars = fig.axes
    box = [p for p in ax_matrix.patches if isinstance(p, Rectangle)][0]
    assert box.get_y() == pytest.approx(0.5)  # row 1 boxed
    heights = [p.get_height() for p in ax_bars.patches[:5]]
    np.testing.assert_allclose(heights, w[1])
    assert "decoder step 1: emits x" in ax_bars.get_title()
    assert "source step 3" in ax_bars.get_title()
    with pytest.raises(ValueError, match=r"step must lie in \[0, 4\], got 5"):
        view.update(fig, step=5)


def test_explorer_steps_and_examples():
    att = torch.stack([anti_diagonal(4), torch.eye(4)])  # (B, T, S)
    ex = decoder_step_explorer(
        att,
        tokens=[[1, 2, 3, 4], [5, 6, 7, 8]],
        query_tokens=[[4, 3, 2, 1], [5, 6, 7, 8]],
        expected=[3, 2, 1, 0],
    )
    assert isinstance(ex, FigureExplorer)
    assert set(ex.controls) == {"step", "example"} and ex.controls["step"].max == 3
    assert ex.static_png().startswith(b"\x89PNG")
    title = lambda: ex.figure.axes[1].get_title()  # noqa: E731
    assert "decoder step 0" in title() and "source step 3" in title()
    ex.controls["step"].value = 2
    assert "decoder step 2" in title() and "source step 1" in title()
    ex.controls["example"].value = 1
    assert "source step 2" in title()
    assert len(ex.redraw_seconds) == 3 and ex.error.value == ""
    assert ex.figure.get_layout_engine() is None  # axes placed by hand: fast redraws


def _png_pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_decoder_step_view_updates_in_place_and_cached_background_is_pixel_exact():
    torch.manual_seed(0)
    att = torch.softmax(3 * torch.randn(2, 5, 12), dim=-1).numpy()
    src = [[f"s{b}{j}" for j in range(12)] for b in range(2)]
    kwargs = {"tokens": src, "query_tokens": list("abcde"), "expected": [4, 3, 2, 1, 0]}

    def render(cache: bool, views) -> list[np.ndarray]:
        fig, out = CourseFigure(figsize=(8.5, 3.2), layout="none"), []
        with course_style():
            view = _view_on(fig, att, cache_background=cache, **kwargs)
        for example, step in views:
            with course_style():
                view.update(fig, step=step, example=example)
            out.append(_png_pixels(figure_to_png(fig, DPI * HIDPI_SCALE)))  # as explorers render
        return fig, out

    views = [(0, 0), (0, 3), (1, 3), (1, 1)]  # steps and an example change (new tick labels)
    fig_full, full = render(False, views)
    fig_fast, fast = render(True, views)
    for a, b in zip(full, fast, strict=True):
        np.testing.assert_array_equal(a, b)  # the pasted background changes no pixel
    assert not np.array_equal(full[0], full[1])  # and the views do differ
    for fig in (fig_full, fig_fast):
        assert len(fig.axes) == 2  # updated in place, not stacked
        np.testing.assert_allclose([p.get_height() for p in fig.axes[1].patches[:12]], att[1][1])
    assert fig_fast.get_layout_engine() is None  # the cached render must not switch it on


def test_explorer_accepts_one_alignment_and_shared_labels():
    ex = decoder_step_explorer(anti_diagonal(3), tokens=["a", "b", "c"], step=2)
    assert set(ex.controls) == {"step"}
    assert "decoder step 2" in ex.figure.axes[1].get_title()
    with pytest.raises(ValueError, match="one list per example \\(2\\); got 1 lists"):
        decoder_step_explorer(torch.rand(2, 3, 3), tokens=[["a", "b", "c"]])
    with pytest.raises(ValueError, match=r"expected attention of shape \(batch, target_len"):
        decoder_step_explorer(torch.rand(3))


def test_decoder_step_explorer_is_a_view_that_a_fresh_build_redraws_alike():
    att = torch.stack([anti_diagonal(4), torch.eye(4)])  # (B, T, S)
    ex = decoder_step_explorer(att, tokens=list("abcd"), query_tokens=list("dcba"))
    ex.controls["step"].value = 2
    ex.controls["example"].value = 1
    assert isinstance(ex.view, DecoderStepView) and ex.error.value == ""
    assert "decoder step 2: emits b" in ex.figure.axes[1].get_title()
    assert_fresh_build_matches(ex)
