"""Gradient-connectivity pictures: log10 scales shared across panels, blank future, working explorer."""

from __future__ import annotations

import warnings

import matplotlib as mpl
import numpy as np
import pytest
import torch

from course_utils.gradient_plots import (
    GradientView,
    gradient_explorer,
    gradient_norm_scale,
    plot_connectivity_grid,
    plot_gradient_map,
    plot_gradient_profiles,
)
from course_utils.style import STYLE
from tests.view_tools import assert_fresh_build_matches

POSITIONS = torch.tensor([[0, 4], [1, 2], [2, 3]])


def test_gradient_labels_name_what_was_differentiated():
    fig = plot_gradient_map({"1 layer": torch.tensor([1e-3, 1e-1])})
    assert r"\hat y" in fig.axes[-1].get_ylabel()  # the colour bar: the output, not the loss
    fig = plot_gradient_map({"1 layer": torch.tensor([1e-3, 1e-1])}, quantity=r"\partial L")
    assert r"\partial L" in fig.axes[-1].get_ylabel()
    fig = plot_connectivity_grid({"1": torch.tril(torch.rand(3, 3) + 0.01)})
    assert any(r"\sum_k h_{t,k}" in ax.get_ylabel() for ax in fig.axes)


def test_gradient_map_rows_are_log10_on_a_shared_scale():
    a = {"1 layer": torch.tensor([[1e-4, 1e-2, 1.0]]), "2 layers": torch.tensor([1e-3, 1e-2, 1e-1])}
    b = {"1 layer": torch.tensor([1e-6, 1e-3, 1.0]), "2 layers": torch.tensor([1e-5, 1e-3, 1.0])}
    scale = gradient_norm_scale(a, b)
    assert (scale.vmin, scale.vmax) == pytest.approx((-6.0, 0.0))
    fig = plot_gradient_map(a, norm=scale)
    image = fig.axes[0].images[0]
    np.testing.assert_allclose(image.get_array(), [[-4, -2, 0], [-3, -2, -1]])
    assert image.norm is scale
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["1 layer", "2 layers"]
    with pytest.raises(ValueError, match="same number of steps"):
        plot_gradient_map({"a": torch.ones(3), "b": torch.ones(4)})


def test_gradient_profiles_are_log_lines_with_marks():
    fig = plot_gradient_profiles(
        {"1": torch.rand(4, 6) + 0.1, "2": torch.rand(6) + 0.1}, marks=[1, 4]
    )
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert len(ax.lines) == 4  # two profiles, two marks


def test_connectivity_grid_blanks_the_future_and_shares_one_scale():
    maps = {f"{d}": torch.tril(torch.rand(5, 5) + 0.01) for d in (1, 2, 3)}
    fig = plot_connectivity_grid(maps)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 3
    assert len({(im.norm.vmin, im.norm.vmax) for im in images}) == 1
    arr = np.ma.getdata(images[0].get_array())
    assert np.isnan(arr[np.triu_indices(5, k=1)]).all()


def test_gradient_explorer_keeps_one_y_scale():
    norms = {"init": {"1": torch.full((2, 5), 1e-6)}, "trained": {"1": torch.full((2, 5), 1e-1)}}
    ge = gradient_explorer(norms)
    first = ge.figure.axes[0].get_ylim()
    ge.controls["stage"].value = "trained"
    assert ge.figure.axes[0].get_ylim() == first
    with pytest.raises(ValueError, match="every gradient norm is 0"):
        gradient_explorer({"x": {"1": torch.zeros(2, 3)}})


def test_gradient_explorer_draws_without_layout_warnings_under_the_course_style():
    with mpl.rc_context(STYLE), warnings.catch_warnings():
        warnings.simplefilter("error")
        ge = gradient_explorer(
            {"init": {"1": torch.rand(3, 8) + 0.1}, "trained": {"1": torch.rand(3, 8)}},
            positions=POSITIONS,
        )
        for k in (1, 2):  # redraw() directly: a widget callback would swallow the warning
            ge.controls["example"].value = k
            ge.redraw()
        ge.controls["stage"].value = "trained"
        ge.redraw()
    assert ge.error.value == ""


def test_gradient_explorer_updates_its_artists_in_place():
    with mpl.rc_context(STYLE):
        norms = torch.rand(3, 8) + 0.1
        ge = gradient_explorer({"init": {"1": norms}}, positions=POSITIONS)
        line, ylim = ge.figure.axes[0].lines[0], ge.figure.axes[0].get_ylim()
        ge.controls["example"].value = 2
        assert ge.figure.axes[0].lines[0] is line
        np.testing.assert_allclose(line.get_ydata(), norms[2].numpy())
        assert [m.get_xdata()[0] for m in ge.figure.axes[0].lines[1:]] == [2, 3]
        assert ge.figure.axes[0].get_ylim() == ylim
    with pytest.raises(ValueError, match="same labels"):
        gradient_explorer({"a": {"1": norms}, "b": {"2": norms}})


def test_gradient_explorer_is_a_view_that_a_fresh_build_redraws_alike():
    """The explorer drives a GradientView: built once and updated in place, it shows what a view
    built anew for the same values shows, to the pixel."""
    g = torch.Generator().manual_seed(0)
    norms = {s: {f"{d}": torch.rand(3, 8, generator=g) + 0.1 for d in (1, 2)} for s in "ab"}
    ge = gradient_explorer(norms, positions=POSITIONS)
    for name, value in (("example", 2), ("stage", "b"), ("example", 1)):
        ge.controls[name].value = value
    assert isinstance(ge.view, GradientView) and ge.error.value == ""
    assert_fresh_build_matches(ge)
