"""State pictures: right data in (padding removed), figures out, and a slider that changes the view."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from course_utils.gru_tracing import trace_gru
from course_utils.state_plots import (
    StateView,
    plot_gates,
    plot_state_flow,
    plot_unit_trajectories,
    state_explorer,
)
from course_utils.tracing import trace_lstm
from tests.view_tools import assert_fresh_build_matches


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
    with pytest.raises(TypeError, match="expected the trace of a recurrent layer"):
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


@pytest.fixture(scope="module")
def gru_trace():
    torch.manual_seed(0)
    gru = nn.GRU(3, 4, num_layers=2, batch_first=True).eval()
    x, lengths = torch.randn(3, 7, 3), torch.tensor([7, 3, 5])
    return trace_gru(gru, pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))


def test_a_gru_shows_h_alone_in_the_flow_and_its_r_z_n_gates(gru_trace) -> None:
    ax = plot_state_flow(gru_trace, example=2, unit=3, step=1).axes[0]
    squares = [c for c in ax.collections if c.get_array() is not None]
    assert len(squares) == 1  # h only: a GRU keeps no cell state c
    np.testing.assert_allclose(squares[0].get_array(), gru_trace.h[:, 0, 2, :5, 3].numpy().ravel())
    quivers = [q for q in ax.collections if type(q).__name__ == "Quiver"]
    assert [q.N for q in quivers] == [2 * 4, 2 * 5, 5]  # h along, h up, x up: no c arrows
    assert "no cell state c" in ax.get_title()
    assert [a.get_title(loc="left") for a in ax.child_axes] == ["h"]  # one colour bar
    fig = plot_gates(gru_trace, example=1)
    images = [a.images[0] for a in fig.axes if a.images]
    assert [a.get_title() for a in fig.axes if a.images] == [
        "reset gate r (layer 1)",
        "update gate z (layer 1)",
        "candidate n (layer 1)",
    ]
    assert [(im.norm.vmin, im.norm.vmax) for im in images] == [(0, 1), (0, 1), (-1, 1)]
    assert all(im.get_array().shape == (4, 3) for im in images)  # padding dropped
    assert len(plot_unit_trajectories(gru_trace).axes) == 1  # h alone


def test_the_state_explorer_shows_a_grus_h_and_gates(gru_trace) -> None:
    ex = state_explorer(gru_trace, step=2)
    assert "Inside the stacked GRU" in ex.children[0].value
    ax_flow, ax_h, ax_gates = ex.figure.axes
    assert ax_gates.get_title() == "gates r, z in (0, 1), n in (-1, 1)"
    assert "h (squares)" in ax_flow.get_title()
    ex.controls["example"].value = 1  # 3 steps, not a window of 7: rebuilt
    ex.controls["unit"].value = 3
    ax_flow, ax_h, ax_gates = ex.figure.axes
    assert ex.error.value == "" and "h=" in ax_h.get_title() and "c=" not in ax_h.get_title()
    assert len(ax_h.get_lines()) == 2  # h and the step mark
    lines = ax_gates.get_lines()[:3]  # r, z, n, then the step mark
    for line, gate in zip(lines, ("r", "z", "n"), strict=True):
        np.testing.assert_allclose(line.get_ydata(), getattr(gru_trace, gate)[1, 0, 1, :3, 3])


def test_a_projected_lstm_shows_c_gates_and_h_cell_per_cell_unit() -> None:
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 6, num_layers=2, proj_size=2, batch_first=True).eval()
    trace = trace_lstm(lstm, torch.randn(2, 5, 3))
    ex = state_explorer(trace)
    assert ex.controls["unit"].max == 5  # the 6 cell units, not the 2 projected ones
    ex.controls["unit"].value = 5
    ax_flow, ax_hc, _ = ex.figure.axes
    assert ex.error.value == "" and "h is projected to 2 units" in ax_flow.get_title()
    h_cell, c = (line.get_ydata() for line in ax_hc.get_lines()[:2])
    np.testing.assert_allclose(h_cell, trace.h_cell[1, 0, 0, :, 5], atol=1e-6)
    np.testing.assert_allclose(c, trace.c[1, 0, 0, :, 5], atol=1e-6)
    ax = plot_state_flow(trace, unit=5).axes[0]
    upper = next(col for col in ax.collections if col.get_array() is not None)
    np.testing.assert_allclose(upper.get_array(), trace.h_cell[:, 0, 0, :, 5].numpy().ravel())
    assert "h is projected to 2 units" in ax.get_title()
    fig = plot_gates(trace, what=("h_cell", "h"))
    assert [a.images[0].get_array().shape for a in fig.axes if a.images] == [(6, 5), (2, 5)]


def test_the_explorer_is_a_view_that_a_fresh_build_redraws_alike(packed_trace) -> None:
    """The explorer drives a StateView: updated in place (rebuilt when the window's shape changes),
    it shows what a view built anew for the same values shows, to the pixel."""
    ex = state_explorer(packed_trace)
    for name, value in (("step", 7), ("unit", 2), ("direction", 1), ("example", 1), ("step", 2)):
        ex.controls[name].value = value
    assert isinstance(ex.view, StateView) and ex.error.value == ""
    assert_fresh_build_matches(ex, StateView(packed_trace, example=1, direction=1, step=2))


def test_tokens_label_the_steps_under_the_input_arrows(packed_trace) -> None:
    words = [[f"w{b}{t}" for t in range(9)] for b in range(3)]
    ex = state_explorer(packed_trace, tokens=words)

    def written() -> list[str]:
        return [t.get_text() for t in ex.figure.axes[0].texts if t.get_text().startswith("w")]

    assert written() == words[0]
    ex.controls["example"].value = 1  # 4 real steps: 4 tokens, the padding's are not shown
    assert written() == words[1][:4]
    ax = plot_state_flow(packed_trace, example=2, tokens=words[2][:6]).axes[0]
    assert [t.get_text() for t in ax.texts if t.get_text().startswith("w")] == words[2][:6]
    with pytest.raises(ValueError, match="example 0 has 9 positions but 3 labels"):
        state_explorer(packed_trace, tokens=["a", "b", "c"])
