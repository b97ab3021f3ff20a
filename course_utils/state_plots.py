"""Pictures of an LSTM's state: the state-flow grid, unit trajectories, gate heatmaps, an explorer.

All functions take an :class:`~course_utils.tracing.LSTMTrace` (data, not a model), draw one example
with its padding removed, and return the ``Figure``::

    trace = trace_lstm(lstm, x)
    plot_state_flow(trace, example=0, unit=3)     # layers x time: h goes up and right, c only right
    plot_unit_trajectories(trace, layer=-1)       # h and c of a few units over time
    plot_gates(trace, layer=0)                    # i, f, g, o as units x time heatmaps
    state_explorer(trace)                         # sliders: example, layer, direction, unit, step
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as widgets
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from .plots import heatmap, to_numpy
from .style import LINE_COLORS, SIGNED_CMAP, WEIGHTS_CMAP, new_figure, styled
from .tracing import LSTMTrace
from .widgets import FigureExplorer, index_control

__all__ = ["plot_gates", "plot_state_flow", "plot_unit_trajectories", "state_explorer"]

H_COLOR, C_COLOR = LINE_COLORS[0], LINE_COLORS[4]  # blue arrows for h, orange for c
GATE_COLORS = (LINE_COLORS[2], LINE_COLORS[1], LINE_COLORS[3], LINE_COLORS[5])  # i, f, g, o
GATE_NAMES = {
    "i": "input gate i",
    "f": "forget gate f",
    "g": "candidate g",
    "o": "output gate o",
    "h": "hidden state h",
    "c": "cell state c",
}


def _check_example(trace: LSTMTrace, example: int) -> int:
    if not isinstance(trace, LSTMTrace):
        raise TypeError(
            f"expected an LSTMTrace (from trace_lstm / trace_lstms), got {type(trace).__name__}"
        )
    if not 0 <= example < trace.batch:
        raise IndexError(f"example must be in [0, {trace.batch}), got {example}")
    return int(trace.lengths[example])


def _c_norm(trace: LSTMTrace, example: int) -> TwoSlopeNorm:
    """One symmetric scale for c over every layer, direction and step of an example."""
    reach = max(float(trace.c[:, :, example].abs().max()), 1e-6)
    return TwoSlopeNorm(vcenter=0.0, vmin=-reach, vmax=reach)


def _state_norms(trace: LSTMTrace) -> dict[str, TwoSlopeNorm]:
    """One symmetric colour scale per quantity, h and c, over the whole trace (every example,
    layer, direction, step and unit): a colour means the same value wherever it appears, and the
    colour bars never change while the sliders move."""
    norms = {}
    for what in ("h", "c"):
        reach = max(float(getattr(trace, what).abs().max()), 1e-6)
        norms[what] = TwoSlopeNorm(vcenter=0.0, vmin=-reach, vmax=reach)
    return norms


def _state_colorbars(ax: Axes, art: dict) -> None:
    """Small horizontal colour bars for h and c, inside the top right of the state-flow axes."""
    for k, what in enumerate(("h", "c")):
        cax = ax.inset_axes((0.60 + 0.21 * k, 0.935, 0.15, 0.03))
        bar = ax.figure.colorbar(art[what], cax=cax, orientation="horizontal")
        reach = float(art[what].norm.vmax)
        bar.set_ticks([-reach, 0.0, reach], labels=[f"{-reach:.2g}", "0", f"{reach:.2g}"])
        cax.tick_params(labelsize=6, length=2, pad=1)
        cax.set_title(what, fontsize=7, loc="left", pad=1)


def _window(length: int, step: int | None, max_steps: int) -> tuple[int, int]:
    if length <= max_steps:
        return 0, length
    centre = length - 1 if step is None else step
    start = min(max(0, centre - max_steps // 2), length - max_steps)
    return start, start + max_steps


def _squares(cx: np.ndarray, cy: np.ndarray, half_w: float, half_h: float) -> np.ndarray:
    """Corners of axis-aligned rectangles centred at (cx, cy): ``(N, 4, 2)`` for a PolyCollection
    (built from arrays, much faster than one ``Rectangle`` patch per cell)."""
    dx = np.array([-half_w, half_w, half_w, -half_w])
    dy = np.array([-half_h, -half_h, half_h, half_h])
    return np.stack([cx[:, None] + dx, cy[:, None] + dy], axis=-1)


def _arrows(ax: Axes, x, y, dx, dy, color: str, width: float = 0.005) -> None:
    """Straight arrows from (x, y) by (dx, dy) in data units: one artist for many arrows."""
    ax.quiver(x, y, dx, dy, color=color, angles="xy", scale_units="xy", scale=1, width=width)


def _build_state_flow(
    ax: Axes,
    num_layers: int,
    width: int,
    direction: int,
    norms: dict[str, TwoSlopeNorm] | None = None,
) -> dict:
    """Draw the parts of the state-flow grid that depend only on its shape (layers x ``width``
    steps, arrow direction); :func:`_update_state_flow` then colours it. Returns the artists to
    update (the explorer builds once and updates on every slider move: much cheaper). With
    ``norms`` (from :func:`_state_norms`) the h and c squares keep those scales, shown by colour
    bars."""
    L, W = num_layers, width
    ts, ls = np.meshgrid(np.arange(W), np.arange(L))  # (L, W) cell centres
    s = 0.17  # half size of a state square
    cx, cy = ts.ravel().astype(float), ls.ravel().astype(float)
    ax.add_collection(
        PolyCollection(
            _squares(cx, cy, 0.36, 0.38), facecolor="#f2f2f2", edgecolor="#999999", lw=0.8
        )
    )
    art: dict = {"t0": 0}
    for what, dy in (("h", 0.18), ("c", -0.18)):
        coll = PolyCollection(
            _squares(cx, cy + dy, s, s), cmap=SIGNED_CMAP, edgecolor="#555555", lw=0.5
        )
        coll.set_array(np.zeros(cx.size))
        art[what] = ax.add_collection(coll)
    sign = 1 if direction == 0 else -1
    # h and c to the next step along the layer (right; left for the backward direction)
    nxt = ts[:, :-1] if sign > 0 else ts[:, 1:]
    right_x, right_l = nxt.ravel() + sign * (s + 0.02), ls[:, :-1].ravel()
    n = right_x.size
    step_dx = np.full(n, sign * (1 - 2 * s - 0.06))
    _arrows(ax, right_x, right_l + 0.18, step_dx, np.zeros(n), H_COLOR)
    _arrows(ax, right_x, right_l - 0.18, step_dx, np.zeros(n), C_COLOR)
    # h up: from the top of each cell into the next layer's cell (beside its squares, into the
    # gates), and out of the top layer as the output; the input x enters layer 0 the same way
    up_t, up_l = ts.ravel() + 0.27, ls.ravel() + 0.38
    _arrows(ax, up_t, up_l, np.zeros(up_t.size), np.full(up_t.size, 0.34), H_COLOR)
    _arrows(
        ax,
        np.arange(W) + 0.27,
        np.full(W, -0.85),
        np.zeros(W),
        np.full(W, 0.57),
        "#777777",
        width=0.004,
    )
    art["span"] = ax.axvspan(-0.46, 0.46, color="#ffd54f", alpha=0.35, zorder=0, visible=False)
    ax.set_xlim(-0.6, W - 0.4)
    ax.set_ylim(-1.0, L - 0.1 + (0.5 if norms is None else 0.85))
    if norms is not None:  # fixed scales, shown once; room for the colour bars above the grid
        art["norms"] = norms
        for what, norm in norms.items():
            art[what].set_norm(norm)
        _state_colorbars(ax, art)
    every = 1 if W <= 8 else 2  # few ticks and labels: they are most of a redraw's cost
    ax.set_xticks(np.arange(0, W, every))
    # tick labels are the real time steps: the window's first step t0 plus the position
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: str(round(x) + art["t0"])))
    ax.set_yticks([])
    for y, label in ((-0.75, "input x"), *((k, f"layer {k}") for k in range(L))):
        ax.text(-0.55, y, label, ha="right", va="center")
    ax.set_xlabel("time step t" + (" (backward direction reads right to left)" if sign < 0 else ""))
    ax.set_aspect("auto")
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.tick_params(length=0)
    return art


def _update_state_flow(
    art: dict, trace: LSTMTrace, example: int, unit: int, direction: int, step: int | None, t0: int
) -> tuple[float, float]:
    """Colour the grid built by :func:`_build_state_flow` for one example, unit and window start
    ``t0``, and move the step highlight. Returns the h and c colour-scale reaches."""
    W = art["h"].get_array().size // trace.num_layers
    art["t0"] = t0
    if "norms" in art:  # fixed scales (colour bars): only the values change
        norms = art["norms"]
    else:
        reach_h = max(float(trace.h[:, :, example].abs().max()), 1e-6)  # this example
        norms = {"h": TwoSlopeNorm(0.0, -reach_h, reach_h), "c": _c_norm(trace, example)}
    for what, norm in norms.items():
        values = to_numpy(getattr(trace, what)[:, direction, example, t0 : t0 + W, unit])  # (L, W)
        if "norms" not in art:
            art[what].set_norm(norm)
        art[what].set_array(values.ravel())
    art["span"].set_visible(step is not None)
    if step is not None:
        art["span"].set_x(step - t0 - 0.46)
    return float(norms["h"].vmax), float(norms["c"].vmax)


@styled
def plot_state_flow(
    trace: LSTMTrace,
    *,
    example: int = 0,
    unit: int = 0,
    direction: int = 0,
    step: int | None = None,
    max_steps: int = 16,
    ax: Axes | None = None,
) -> Figure:
    """The stacked LSTM as a grid of cells, layers (up) x time (right), for one unit of one example.

    Each cell shows its h (upper square) and c (lower square), coloured by the unit's value.
    Arrows show where each state goes: **h** (blue) goes right to the next step *and* up as the
    next layer's input; **c** (orange) only goes right, along its own layer.

    Args:
        trace: from :func:`~course_utils.tracing.trace_lstm`.
        example: which sequence of the batch (padding is not drawn).
        unit: which hidden unit colours the squares.
        direction: 0 forward, 1 backward (its arrows point left).
        step: a time step to highlight (the explorer's slider).
        max_steps: longer sequences show a window of this many steps around ``step``.
    """
    length = _check_example(trace, example)
    _, direction = trace._check(0, direction)
    if not 0 <= unit < trace.hidden_size:
        raise IndexError(f"unit must be in [0, {trace.hidden_size}), got {unit}")
    if step is not None and not 0 <= step < length:
        raise IndexError(f"step must be in [0, {length}) for example {example}, got {step}")
    if ax is None:
        _, ax = new_figure(figsize=(7.5, 1.2 + 1.1 * trace.num_layers))
    t0, t1 = _window(length, step, max_steps)
    art = _build_state_flow(ax, trace.num_layers, t1 - t0, direction, norms=_state_norms(trace))
    _update_state_flow(art, trace, example, unit, direction, step, t0)
    ax.set_title(
        f"example {example}, unit {unit}: upper square h, lower square c (one colour scale "
        "each, over the whole trace)\nblue arrows: h goes along and up; "
        "orange arrows: c goes along its own layer only",
        fontsize=8,
    )
    return ax.figure


@styled
def plot_unit_trajectories(
    trace: LSTMTrace,
    *,
    example: int = 0,
    layer: int = -1,
    direction: int = 0,
    units: Sequence[int] | None = None,
    step: int | None = None,
    fig: Figure | None = None,
) -> Figure:
    """h (left) and c (right) of a few units over time, one line per unit, padding removed.

    h is squashed into (-1, 1) by tanh; c is not bounded, which is what lets it carry a value a
    long way.
    """
    length = _check_example(trace, example)
    layer, direction = trace._check(layer, direction)
    units = list(range(min(4, trace.hidden_size))) if units is None else list(units)
    if any(not 0 <= u < trace.hidden_size for u in units):
        raise IndexError(f"units must be in [0, {trace.hidden_size}), got {units}")
    if fig is None:
        fig, axes = new_figure(1, 2, figsize=(7.5, 2.6))
    else:
        axes = fig.subplots(1, 2)
    steps = np.arange(length)
    for ax, what in zip(axes, ("h", "c"), strict=True):
        values = to_numpy(trace.unpadded(what, example, layer, direction))  # (len, H)
        for k, u in enumerate(units):
            ax.plot(
                steps,
                values[:, u],
                color=LINE_COLORS[k % len(LINE_COLORS)],
                lw=1.3,
                label=f"unit {u}",
            )
        if step is not None:
            ax.axvline(step, color="#999999", lw=0.8, ls="--")
        ax.axhline(0, color="#cccccc", lw=0.6)
        ax.set_xlabel("time step t")
        ax.set_ylabel(what)
        ax.set_title(f"{GATE_NAMES[what]}, layer {layer}" + (", backward" if direction else ""))
    axes[0].set_ylim(-1.05, 1.05)
    axes[1].legend(loc="best", frameon=False)
    return fig


def _gate_norm(name: str, trace: LSTMTrace, example: int) -> Normalize:
    if name in "ifo":
        return Normalize(0.0, 1.0)
    if name in "gh":
        return TwoSlopeNorm(0.0, -1.0, 1.0)
    return _c_norm(trace, example)


@styled
def plot_gates(
    trace: LSTMTrace,
    *,
    example: int = 0,
    layer: int = -1,
    direction: int = 0,
    what: Sequence[str] = ("i", "f", "g", "o"),
    fig: Figure | None = None,
) -> Figure:
    """Gates (or h, c) of one layer as units x time heatmaps, padding removed.

    The sigmoid gates i, f, o share one scale [0, 1]; g and h share [-1, 1]; c gets a symmetric
    scale of its own (it is not bounded).
    """
    length = _check_example(trace, example)
    layer, direction = trace._check(layer, direction)
    bad = [w for w in what if w not in GATE_NAMES]
    if bad or not what:
        raise ValueError(f"what must name some of {list(GATE_NAMES)}, got {list(what)}")
    if fig is None:
        fig, axes = new_figure(1, len(what), figsize=(2.3 * len(what) + 0.8, 2.6), squeeze=False)
        axes = axes[0]
    else:
        axes = np.atleast_1d(fig.subplots(1, len(what)))
    for k, (ax, name) in enumerate(zip(axes, what, strict=True)):
        values = to_numpy(trace.unpadded(name, example, layer, direction)).T  # (H, len)
        signed = name not in "ifo"
        heatmap(
            values,
            ax=ax,
            norm=_gate_norm(name, trace, example),
            signed=signed,
            cmap=SIGNED_CMAP if signed else WEIGHTS_CMAP,
            colorbar=name in ("o", "g", "c") or k == len(what) - 1,
            xlabel="time step t",
            ylabel="unit" if k == 0 else None,
            title=GATE_NAMES[name] + f" (layer {layer})",
        )
        if length <= 12:
            ax.set_xticks(np.arange(length))
    return fig


def state_explorer(
    trace: LSTMTrace,
    *,
    example: int = 0,
    unit: int = 0,
    step: int = 0,
    title: str | None = None,
) -> FigureExplorer:
    """A widget to walk through a trace: example, layer, direction, unit and time step sliders.

    Left: the state-flow grid for the chosen unit (the chosen step highlighted); right: that unit's
    h and c at the chosen layer over time, and its four gates, with the step marked. The first view
    is also a static image (the notebook reads without a kernel). ``step`` is where the step slider
    starts (open where something happens); ``title`` defaults to "Inside the stacked LSTM" for
    several layers and "Inside the LSTM" for one. h and c keep one colour scale each over the whole
    trace, shown by colour bars.
    """
    _check_example(trace, example)

    def slider(value: int, hi: int, desc: str) -> widgets.Widget:
        # a slider whose track has room for its values; a number box for long ranges (256
        # examples on a short track jumped dozens of examples per pixel)
        return index_control(desc, hi + 1, value, width="260px")

    controls = {
        "example": slider(example, trace.batch - 1, "example"),
        "layer": slider(trace.num_layers - 1, trace.num_layers - 1, "layer"),
        "direction": slider(0, trace.num_directions - 1, "direction"),
        "unit": slider(unit, trace.hidden_size - 1, "unit"),
        "step": slider(min(max(step, 0), trace.seq_len - 1), trace.seq_len - 1, "step"),
    }

    built: dict = {}  # the artists of the current figure, and the shape they were built for
    norms = _state_norms(trace)  # one scale per quantity for every view: colour bars stay put

    def build(fig: Figure, width: int, direction: int) -> None:
        """Axes, arrows, labels: everything that does not change when a slider moves."""
        fig.clear()
        built.clear()
        built["key"] = (width, direction)
        ax_flow = fig.add_axes((0.09, 0.14, 0.5, 0.74))
        built["flow"] = _build_state_flow(ax_flow, trace.num_layers, width, direction, norms)
        ax_hc = fig.add_axes((0.655, 0.58, 0.29, 0.32))
        ax_gate = fig.add_axes((0.655, 0.14, 0.29, 0.32))
        built["axes"] = (ax_flow, ax_hc, ax_gate)
        built["lines"], built["marks"] = {}, []
        panels = ((ax_hc, "hc", (H_COLOR, C_COLOR)), (ax_gate, "ifgo", GATE_COLORS))
        for ax, names, colors in panels:
            for k, (name, color) in enumerate(zip(names, colors, strict=True)):
                (built["lines"][name],) = ax.plot([], [], color=color, lw=1.2)
                # a coloured name beside the panel: cheaper than a legend
                ax.text(1.02, 0.85 - 0.22 * k, name, color=color, transform=ax.transAxes)
            built["marks"].append(ax.axvline(0, color="#999999", lw=0.8, ls="--"))
        ax_gate.xaxis.set_major_locator(MaxNLocator(4, integer=True))
        ax_hc.set_xticks([])
        ax_hc.yaxis.set_major_locator(MaxNLocator(3))
        ax_gate.set_yticks([-1, 0, 1])
        ax_gate.set_ylim(-1.05, 1.05)
        ax_gate.set_xlabel("time step t")
        ax_gate.set_title("gates i, f, o in (0, 1), g in (-1, 1)", fontsize=8, y=1.01)
        ax_hc.set_title(" ", fontsize=8, y=1.01)
        ax_flow.set_title(" ", fontsize=8, y=1.01)
        for ax in built["axes"]:
            # fixed title (y=1.01 above) and axis-label positions: matplotlib then skips
            # measuring every tick label on each redraw to place them
            ax.xaxis.set_label_coords(0.5, -0.13 if ax is ax_flow else -0.3)
            ax.yaxis.set_label_coords(-0.1, 0.5)

    def draw(fig: Figure, example: int, layer: int, direction: int, unit: int, step: int) -> None:
        length = int(trace.lengths[example])
        step = min(step, length - 1)  # shorter examples: clamp instead of failing
        t0, t1 = _window(length, step, 10)
        if not fig.axes or built.get("key") != (t1 - t0, direction):
            build(fig, t1 - t0, direction)  # first call, or a window or direction of new shape
        ax_flow, ax_hc, ax_gate = built["axes"]
        _update_state_flow(built["flow"], trace, example, unit, direction, step, t0)
        ax_flow.title.set_text(  # keeps the title's font (set_title would reset it)
            f"example {example}, unit {unit}, step {step}: h (upper) and c (lower squares)"
        )
        lay = trace.layer(layer, direction)
        steps = np.arange(length)
        for name, line in built["lines"].items():
            line.set_data(steps, to_numpy(getattr(lay, name)[example, :length, unit]))
        for mark in built["marks"]:
            mark.set_xdata([step, step])
        for ax in (ax_hc, ax_gate):
            ax.set_xlim(-0.5, max(length - 0.5, 0.5))
        hc = np.concatenate([built["lines"][name].get_ydata() for name in "hc"])
        lo, hi = float(hc.min()), float(hc.max())
        pad = max(0.05 * (hi - lo), 0.05)
        ax_hc.set_ylim(lo - pad, hi + pad)
        ax_hc.title.set_text(
            f"layer {lay.layer}{' backward' if direction else ''}: "
            f"h={float(lay.h[example, step, unit]) + 0.0:+.2f}, "  # + 0.0: no "-0.00"
            f"c={float(lay.c[example, step, unit]) + 0.0:+.2f}"
        )

    return FigureExplorer(
        draw,
        controls,
        figsize=(8.4, 3.0),
        layout=None,
        clear=False,
        title=title
        or f"Inside the {'stacked ' if trace.num_layers > 1 else ''}LSTM: move the sliders",
    )
