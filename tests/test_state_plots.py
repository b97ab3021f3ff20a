"""State pictures: right data in (padding removed), figures out, and a slider that changes the view."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from course_utils.state_plots import (
    plot_gates,
    plot_state_flow,
    plot_unit_trajectories,
    state_explorer,
)
from course_utils.tracing import trace_lstm


@pytest.fixture(scope="module")
def packed_trace():
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True).eval()
    x = torch.randn(3, 9, 3)
    lengths = torch.tensor([9, 4, 6])
    return trace_lstm(
        lstm, pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    )


def test_state_flow_draws_h_and_c_of_each_cell(packed_trace) -> None:
    fig = plot_state_flow(packed_trace, example=1, unit=2, step=3)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    L, length = packed_trace.num_layers, 4  # example 1 has 4 real steps: padding is not drawn
    squares = [c for c in ax.collections if c.get_array() is not None]
    assert len(squares) == 2  # one collection of h squares, one of c squares
    h_vals, c_vals = (np.asarray(c.get_array()) for c in squares)
    np.testing.assert_allclose(
        h_vals, packed_trace.h[:, 0, 1, :length, 2].numpy().ravel(), atol=1e-6
    )
    np.testing.assert_allclose(
        c_vals, packed_trace.c[:, 0, 1, :length, 2].numpy().ravel(), atol=1e-6
    )
    # arrows: h along + c along (one per gap in each layer), h up (one per cell), x up (one per step)
    quivers = [q for q in ax.collections if type(q).__name__ == "Quiver"]
    assert [q.N for q in quivers] == [L * (length - 1), L * (length - 1), L * length, length]
    h_right, c_right, h_up, _ = quivers
    assert np.all(np.asarray(c_right.V) == 0) and np.all(np.asarray(c_right.U) > 0)  # c: along only
    assert np.all(np.asarray(h_up.U) == 0) and np.all(np.asarray(h_up.V) > 0)  # h: also up
    back = plot_state_flow(packed_trace, example=0, direction=1).axes[0]
    back_right = [q for q in back.collections if type(q).__name__ == "Quiver"][0]
    assert np.all(np.asarray(back_right.U) < 0)  # the backward direction flows right to left


def test_state_flow_windows_long_sequences() -> None:
    torch.manual_seed(0)
    tr = trace_lstm(nn.LSTM(2, 3, batch_first=True), torch.randn(1, 50, 2))
    ax = plot_state_flow(tr, step=40, max_steps=8).axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [str(t) for t in range(36, 44)]


def test_errors_name_the_valid_range(packed_trace) -> None:
    with pytest.raises(IndexError, match=r"unit must be in \[0, 5\)"):
        plot_state_flow(packed_trace, unit=5)
    with pytest.raises(IndexError, match=r"step must be in \[0, 4\) for example 1"):
        plot_state_flow(packed_trace, example=1, step=6)
    with pytest.raises(IndexError, match="example must be in"):
        plot_gates(packed_trace, example=3)
    with pytest.raises(TypeError, match="expected an LSTMTrace"):
        plot_state_flow(torch.zeros(3))
    with pytest.raises(ValueError, match="what must name some of"):
        plot_gates(packed_trace, what=("q",))


def test_gates_and_trajectories_drop_padding(packed_trace) -> None:
    fig = plot_gates(packed_trace, example=1, layer=0, direction=1)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 4 and all(im.get_array().shape == (5, 4) for im in images)
    assert images[0].norm.vmin == 0 and images[0].norm.vmax == 1  # sigmoid gates on [0, 1]
    fig = plot_unit_trajectories(packed_trace, example=2, units=[0, 4])
    assert all(
        len(line.get_xdata()) == 6
        for ax in fig.axes
        for line in ax.get_lines()
        if len(line.get_xdata()) > 2
    )


def test_explorer_first_view_and_step_slider(packed_trace) -> None:
    ex = state_explorer(packed_trace)
    sliders = [c for c in ex.controls.values() if isinstance(c, widgets.IntSlider)]
    assert list(ex.controls) == ["example", "layer", "direction", "unit", "step"]
    assert len(sliders) == 5 and ex.static_png().startswith(b"\x89PNG")
    first_png = ex.static_png()

    def highlight_x():
        ax = ex.figure.axes[0]
        span = [p for p in ax.patches if type(p).__name__ == "Rectangle"][-1]
        return span.get_x()

    before = highlight_x()
    ex.controls["step"].value = 5
    assert len(ex.redraw_seconds) == 2 and ex.error.value == ""
    assert highlight_x() == pytest.approx(before + 5)
    assert "step 5" in ex.figure.axes[0].get_title()
    assert ex.static_png() != first_png
    ex.controls["example"].value = 1  # shorter example: the step is clamped, not an error
    assert ex.error.value == "" and "step 3" in ex.figure.axes[0].get_title()
    ex.controls["unit"].value = 4
    assert "unit 4" in ex.figure.axes[0].get_title()


def test_explorer_updates_in_place(packed_trace) -> None:
    """clear=False: moving sliders updates the artists built once (none pile up), a direction or
    window of another shape rebuilds, and the view always matches a fresh explorer's."""
    ex = state_explorer(packed_trace)

    def artists():
        return [len(ax.get_children()) for ax in ex.figure.axes]

    built = artists()
    flow = ex.figure.axes[0]
    for name, value in (("step", 7), ("unit", 2), ("layer", 0), ("step", 2), ("unit", 4)):
        ex.controls[name].value = value
        assert ex.error.value == "" and artists() == built and ex.figure.axes[0] is flow
    ex.controls["direction"].value = 1  # arrows point the other way: rebuilt, same layout
    ex.controls["example"].value = 1  # 4 steps instead of a window of 9: rebuilt
    assert ex.error.value == "" and len(ex.figure.axes) == 3
    fresh = state_explorer(packed_trace, example=1, unit=4)
    for name in ("layer", "direction", "step"):
        fresh.controls[name].value = ex.controls[name].value
    assert [ax.get_title() for ax in fresh.figure.axes] == [ax.get_title() for ax in ex.figure.axes]
    lines = ex.figure.axes[1].get_lines(), fresh.figure.axes[1].get_lines()
    for mine, theirs in zip(*lines, strict=True):
        assert np.array_equal(mine.get_ydata(), theirs.get_ydata())
    assert np.array_equal(
        ex.figure.axes[0].collections[1].get_array(),
        fresh.figure.axes[0].collections[1].get_array(),
    )
    assert ex.figure.axes[1].get_ylim() == fresh.figure.axes[1].get_ylim()


def test_state_flow_has_one_scale_per_quantity_with_colour_bars(packed_trace) -> None:
    """h and c keep one colour scale each over the whole trace, shown by two colour bars."""
    for example in (0, 1):
        ax = plot_state_flow(packed_trace, example=example, unit=1).axes[0]
        h_sq, c_sq = (c for c in ax.collections if c.get_array() is not None)
        assert h_sq.norm.vmax == pytest.approx(float(packed_trace.h.abs().max()))
        assert c_sq.norm.vmax == pytest.approx(float(packed_trace.c.abs().max()))
        bars = [child for child in ax.child_axes if child.get_title(loc="left") in ("h", "c")]
        assert len(bars) == 2


def test_state_explorer_opens_at_a_step_with_a_fitting_title() -> None:
    torch.manual_seed(0)
    one_layer = trace_lstm(nn.LSTM(2, 3, batch_first=True), torch.randn(2, 12, 2))
    explorer = state_explorer(one_layer, step=7)
    assert explorer.controls["step"].value == 7
    assert "Inside the LSTM" in explorer.children[0].value
    two = trace_lstm(nn.LSTM(2, 3, num_layers=2, batch_first=True), torch.randn(2, 12, 2))
    assert "Inside the stacked LSTM" in state_explorer(two).children[0].value
    assert "mine" in state_explorer(two, title="mine").children[0].value
    assert state_explorer(two, step=99).controls["step"].value == 11  # clamped to the last step
