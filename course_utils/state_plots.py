"""Pictures of a recurrent layer's state: the state-flow grid, unit trajectories, gates, an explorer.

All functions take a trace (data, not a model): an :class:`~course_utils.tracing.LSTMTrace` (h, c
and the i, f, g, o gates) or a :class:`~course_utils.gru_tracing.GRUTrace` (h and the r, z, n
gates). They draw one example with its padding removed and return the ``Figure``::

    trace = trace_lstm(lstm, x)
    plot_state_flow(trace, example=0, unit=3)     # layers x time: h goes up and right, c only right
    plot_unit_trajectories(trace, layer=-1)       # h and c of a few units over time
    plot_gates(trace, layer=0)                    # i, f, g, o as units x time heatmaps
    state_explorer(trace)                         # sliders: example, layer, direction, unit, step

A trace names what it holds (``trace.states``, ``trace.gates``): a GRU shows h alone (it has no
cell state) and its r, z, n gates. An LSTM with ``proj_size > 0`` projects h to fewer units, so the
pictures show each cell unit's c, its gates and ``h_cell = o * tanh(c)`` before the projection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from .plots import heatmap, per_example, to_numpy
from .style import LINE_COLORS, SIGNED_CMAP, WEIGHTS_CMAP, new_figure, styled
from .widgets import FigureExplorer, View, index_control

__all__ = [
    "StateView",
    "plot_gates",
    "plot_state_flow",
    "plot_unit_trajectories",
    "state_explorer",
]

H_COLOR, C_COLOR = LINE_COLORS[0], LINE_COLORS[4]  # blue arrows for h, orange for c
#: One colour per gate; a GRU's gates take the colour of the LSTM gate they resemble.
GATE_COLORS = {
    "i": LINE_COLORS[2],
    "f": LINE_COLORS[1],
    "g": LINE_COLORS[3],
    "o": LINE_COLORS[5],
    "r": LINE_COLORS[2],
    "z": LINE_COLORS[1],
    "n": LINE_COLORS[3],
}
GATE_NAMES = {
    "i": "input gate i",
    "f": "forget gate f",
    "g": "candidate g",
    "o": "output gate o",
    "r": "reset gate r",
    "z": "update gate z",
    "n": "candidate n",
    "h": "hidden state h",
    "c": "cell state c",
    "h_cell": "cell output h_cell",
}
#: Gates squashed by a sigmoid into (0, 1); the others (g, n) by tanh into (-1, 1).
SIGMOID_GATES = ("i", "f", "o", "r", "z")


def _check_example(trace: Any, example: int) -> int:
    if not all(hasattr(trace, name) for name in ("h", "lengths")):
        raise TypeError(
            "expected the trace of a recurrent layer (an LSTMTrace from trace_lstm / trace_lstms "
            f"or a GRUTrace from trace_gru / trace_grus), got {type(trace).__name__}"
        )
    batch = trace.h.shape[2]
    if not 0 <= example < batch:
        raise IndexError(f"example must be in [0, {batch}), got {example}")
    return int(trace.lengths[example])


def _check_layer(trace: Any, layer: int, direction: int) -> tuple[int, int]:
    """``(layer, direction)`` checked against the trace, ``layer=-1`` turned into the top layer."""
    num_layers, num_directions = trace.h.shape[:2]
    if not -num_layers <= layer < num_layers:
        raise IndexError(f"layer must be in [0, {num_layers}), got {layer}")
    if not 0 <= direction < num_directions:
        raise IndexError(
            f"direction must be in [0, {num_directions}) "
            f"({'0 forward, 1 backward' if num_directions == 2 else 'unidirectional'}), "
            f"got {direction}"
        )
    return layer % num_layers, direction


def _cell_name(trace: Any) -> str:
    """``"LSTM"`` or ``"GRU"``, read off the trace's class (``GRUTrace`` -> ``"GRU"``)."""
    name = type(trace).__name__
    return name.removesuffix("Trace") if name.endswith("Trace") and name != "Trace" else "LSTM"


def _gates(trace: Any) -> tuple[str, ...]:
    return tuple(getattr(trace, "gates", ("i", "f", "g", "o")))


def _unit_states(trace: Any) -> dict[str, torch.Tensor]:
    """The states per cell unit, name -> ``(L, D, B, T, units)``: h and c for an LSTM (h_cell in
    place of h when h is projected to fewer units), h alone for a GRU."""
    h_cell = getattr(trace, "h_cell", None)
    states = {}
    for name in getattr(trace, "states", ("h", "c")):
        if name == "h" and h_cell is not None:
            states["h_cell"] = h_cell
        else:
            states[name] = getattr(trace, name)
    return states


def _projection_note(trace: Any) -> str:
    """One line saying that h is projected (empty for a trace without a projection)."""
    if getattr(trace, "h_cell", None) is None:
        return ""
    return (
        f"h is projected to {trace.h.shape[-1]} units; shown per cell unit: "
        "h_cell = o * tanh(c) before the projection"
    )


def _symmetric_norm(values: torch.Tensor) -> TwoSlopeNorm:
    """A colour scale centred on 0 that reaches the largest absolute value."""
    reach = max(float(values.abs().max()), 1e-6)
    return TwoSlopeNorm(vcenter=0.0, vmin=-reach, vmax=reach)


def _state_norms(states: dict[str, torch.Tensor]) -> dict[str, TwoSlopeNorm]:
    """One symmetric colour scale per state (h, c) over the whole trace (every example, layer,
    direction, step and unit): a colour means the same value wherever it appears, and the colour
    bars never change while the sliders move."""
    return {name: _symmetric_norm(values) for name, values in states.items()}


def _state_colorbars(ax: Axes, squares: dict[str, PolyCollection]) -> None:
    """Small horizontal colour bars, one per state, inside the top right of the state-flow axes."""
    for k, (what, coll) in enumerate(squares.items(), start=2 - len(squares)):
        cax = ax.inset_axes((0.60 + 0.21 * k, 0.935, 0.15, 0.03))
        bar = ax.figure.colorbar(coll, cax=cax, orientation="horizontal")
        reach = float(coll.norm.vmax)
        bar.set_ticks([-reach, 0.0, reach], labels=[f"{-reach:.2g}", "0", f"{reach:.2g}"])
        cax.tick_params(labelsize=6, length=2, pad=1)
        cax.set_title(what, fontsize=7, loc="left", pad=1)


def _squares_caption(names: Sequence[str], long: bool) -> str:
    """Which square shows what: ``"upper square h, lower square c"`` (or a GRU's one square)."""
    if len(names) == 1:
        return f"square {names[0]}" if long else f"{names[0]} (squares)"
    upper, lower = names
    if long:
        return f"upper square {upper}, lower square {lower}"
    return f"{upper} (upper) and {lower} (lower squares)"


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
    norms: dict[str, TwoSlopeNorm],
    tokens: bool = False,
) -> dict:
    """Draw the parts of the state-flow grid that depend only on its shape (layers x ``width``
    steps, arrow direction); :func:`_update_state_flow` then colours it. Returns the artists to
    update (the explorer builds once and updates on every slider move: much cheaper). ``norms``
    (from :func:`_state_norms`) names the states, one square per state in each cell (h above c;
    a GRU's h alone), and keeps their colour scales, shown by colour bars. With ``tokens`` a
    label under each step's input arrow waits for the token read at that step."""
    L, W = num_layers, width
    ts, ls = np.meshgrid(np.arange(W), np.arange(L))  # (L, W) cell centres
    s = 0.17  # half size of a state square
    cx, cy = ts.ravel().astype(float), ls.ravel().astype(float)
    ax.add_collection(
        PolyCollection(
            _squares(cx, cy, 0.36, 0.38), facecolor="#f2f2f2", edgecolor="#999999", lw=0.8
        )
    )
    offsets = (0.18, -0.18) if len(norms) == 2 else (0.0,)  # h above c; a lone h in the middle
    art: dict = {"t0": 0, "squares": {}}
    for (what, norm), dy in zip(norms.items(), offsets, strict=True):
        coll = PolyCollection(
            _squares(cx, cy + dy, s, s), cmap=SIGNED_CMAP, edgecolor="#555555", lw=0.5
        )
        coll.set_array(np.zeros(cx.size))
        coll.set_norm(norm)
        art["squares"][what] = ax.add_collection(coll)
    sign = 1 if direction == 0 else -1
    # each state to the next step along the layer (right; left for the backward direction)
    nxt = ts[:, :-1] if sign > 0 else ts[:, 1:]
    right_x, right_l = nxt.ravel() + sign * (s + 0.02), ls[:, :-1].ravel()
    n = right_x.size
    step_dx = np.full(n, sign * (1 - 2 * s - 0.06))
    for dy, color in zip(offsets, (H_COLOR, C_COLOR), strict=False):
        _arrows(ax, right_x, right_l + dy, step_dx, np.zeros(n), color)
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
    art["tokens"] = [
        ax.text(k, -0.93, "", ha="center", va="center", fontsize=7, color="#333333")
        for k in range(W if tokens else 0)
    ]
    art["span"] = ax.axvspan(-0.46, 0.46, color="#ffd54f", alpha=0.35, zorder=0, visible=False)
    ax.set_xlim(-0.6, W - 0.4)
    ax.set_ylim(-1.0, L - 0.1 + 0.85)  # room for the colour bars above the grid
    _state_colorbars(ax, art["squares"])
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
    art: dict,
    states: dict[str, torch.Tensor],
    example: int,
    unit: int,
    direction: int,
    step: int | None,
    t0: int,
    tokens: Sequence[str] | None = None,
) -> None:
    """Colour the grid built by :func:`_build_state_flow` for one example, unit and window start
    ``t0`` (``states`` from :func:`_unit_states`), move the step highlight and write the window's
    ``tokens`` (the example's, one per step) under the input arrows."""
    art["t0"] = t0
    for k, text in enumerate(art["tokens"]):
        token = str(tokens[t0 + k]) if tokens is not None and t0 + k < len(tokens) else ""
        text.set_text(token if len(token) <= 8 else token[:7] + "…")
    for what, coll in art["squares"].items():
        W = coll.get_array().size // states[what].shape[0]
        values = to_numpy(states[what][:, direction, example, t0 : t0 + W, unit])  # (L, W)
        coll.set_array(values.ravel())
    art["span"].set_visible(step is not None)
    if step is not None:
        art["span"].set_x(step - t0 - 0.46)


def _check_tokens(tokens: Sequence[str], length: int, example: int) -> None:
    if len(tokens) < length:
        raise ValueError(
            f"tokens: example {example} has {length} steps but {len(tokens)} tokens; "
            "pass one token per step"
        )


def _check_unit(unit: int, units: int, what: str = "unit") -> None:
    if not 0 <= unit < units:
        raise IndexError(f"{what} must be in [0, {units}), got {unit}")


@styled
def plot_state_flow(
    trace: Any,
    *,
    example: int = 0,
    unit: int = 0,
    direction: int = 0,
    step: int | None = None,
    max_steps: int = 16,
    tokens: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """The stacked LSTM (or GRU) as a grid of cells, layers (up) x time (right), for one unit of one
    example.

    Each cell shows its h (upper square) and c (lower square), coloured by the unit's value.
    Arrows show where each state goes: **h** (blue) goes right to the next step *and* up as the
    next layer's input; **c** (orange) only goes right, along its own layer. A GRU's cell has h
    alone (one square); an LSTM whose h is projected shows h_cell, the cell unit's h before the
    projection.

    Args:
        trace: from :func:`~course_utils.tracing.trace_lstm` (or a GRU's trace).
        example: which sequence of the batch (padding is not drawn).
        unit: which unit (of the cell) colours the squares.
        direction: 0 forward, 1 backward (its arrows point left).
        step: a time step to highlight (the explorer's slider).
        max_steps: longer sequences show a window of this many steps around ``step``.
        tokens: the example's token at each step, written under the input arrows.
    """
    length = _check_example(trace, example)
    if tokens is not None:
        _check_tokens(tokens, length, example)
    _, direction = _check_layer(trace, 0, direction)
    states = _unit_states(trace)
    _check_unit(unit, next(iter(states.values())).shape[-1])
    if step is not None and not 0 <= step < length:
        raise IndexError(f"step must be in [0, {length}) for example {example}, got {step}")
    num_layers = trace.h.shape[0]
    if ax is None:
        _, ax = new_figure(figsize=(7.5, 1.2 + 1.1 * num_layers))
    t0, t1 = _window(length, step, max_steps)
    norms = _state_norms(states)
    art = _build_state_flow(ax, num_layers, t1 - t0, direction, norms, tokens is not None)
    _update_state_flow(art, states, example, unit, direction, step, t0, tokens)
    names = list(states)
    scale = "one colour scale each" if len(names) > 1 else "one colour scale"
    if "c" in states:
        arrows = "blue arrows: h goes along and up; orange arrows: c goes along its own layer only"
    else:
        arrows = f"blue arrows: h goes along and up (a {_cell_name(trace)} has no cell state c)"
    note = _projection_note(trace)
    ax.set_title(
        f"example {example}, unit {unit}: {_squares_caption(names, long=True)} ({scale}, "
        f"over the whole trace)\n{arrows}" + (f"\n{note}" if note else ""),
        fontsize=8,
    )
    return ax.figure


@styled
def plot_unit_trajectories(
    trace: Any,
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
    long way. A GRU has h alone; a projected LSTM shows h_cell per cell unit.
    """
    length = _check_example(trace, example)
    layer, direction = _check_layer(trace, layer, direction)
    states = _unit_states(trace)
    n_units = next(iter(states.values())).shape[-1]
    units = list(range(min(4, n_units))) if units is None else list(units)
    if any(not 0 <= u < n_units for u in units):
        raise IndexError(f"units must be in [0, {n_units}), got {units}")
    if fig is None:
        fig, axes = new_figure(1, len(states), figsize=(7.5, 2.6), squeeze=False)
        axes = axes[0]
    else:
        axes = np.atleast_1d(fig.subplots(1, len(states)))
    steps = np.arange(length)
    for ax, (what, values) in zip(axes, states.items(), strict=True):
        values = to_numpy(values[layer, direction, example, :length])  # (len, units)
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
    axes[-1].legend(loc="best", frameon=False)
    return fig


def _quantities(trace: Any) -> dict[str, torch.Tensor]:
    """Everything :func:`plot_gates` can draw, name -> ``(L, D, B, T, units)``."""
    found = {name: getattr(trace, name) for name in _gates(trace)}
    found.update(_unit_states(trace))
    if "h_cell" in found:
        found["h"] = trace.h  # the projected h, P units
    return found


def _gate_norm(name: str, values: torch.Tensor, projected: bool) -> Normalize:
    """Sigmoid gates on [0, 1]; tanh-squashed values (g, n, h) on [-1, 1]; the unbounded ones (c,
    a projected h) on a symmetric scale of this example's own."""
    if name in SIGMOID_GATES:
        return Normalize(0.0, 1.0)
    if name in ("g", "n", "h_cell") or (name == "h" and not projected):
        return TwoSlopeNorm(0.0, -1.0, 1.0)
    return _symmetric_norm(values)


@styled
def plot_gates(
    trace: Any,
    *,
    example: int = 0,
    layer: int = -1,
    direction: int = 0,
    what: Sequence[str] | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Gates (or h, c) of one layer as units x time heatmaps, padding removed.

    ``what`` defaults to the trace's gates (i, f, g, o; a GRU's r, z, n). The sigmoid gates
    (i, f, o; r, z) share one scale [0, 1]; g, n and h share [-1, 1]; c gets a symmetric scale of
    its own (it is not bounded), as does a projected h.
    """
    length = _check_example(trace, example)
    layer, direction = _check_layer(trace, layer, direction)
    found = _quantities(trace)
    what = _gates(trace) if what is None else tuple(what)
    bad = [w for w in what if w not in found]
    if bad or not what:
        raise ValueError(f"what must name some of {list(found)}, got {list(what)}")
    if fig is None:
        fig, axes = new_figure(1, len(what), figsize=(2.3 * len(what) + 0.8, 2.6), squeeze=False)
        axes = axes[0]
    else:
        axes = np.atleast_1d(fig.subplots(1, len(what)))
    for k, (ax, name) in enumerate(zip(axes, what, strict=True)):
        example_values = found[name][:, :, example, :length]
        values = to_numpy(example_values[layer, direction]).T  # (units, len)
        signed = name not in SIGMOID_GATES
        heatmap(
            values,
            ax=ax,
            norm=_gate_norm(name, example_values, "h_cell" in found),
            signed=signed,
            cmap=SIGNED_CMAP if signed else WEIGHTS_CMAP,
            colorbar=name in ("o", "g", "c", "z", "n") or k == len(what) - 1,
            xlabel="time step t",
            ylabel="unit" if k == 0 else None,
            title=GATE_NAMES[name] + f" (layer {layer})",
        )
        if length <= 12:
            ax.set_xticks(np.arange(length))
    return fig


class StateView(View):
    """The state explorer's figure: the state-flow grid (left), one unit's states (right, top) and
    gates (right, bottom) over time, the chosen step marked.

    Built for one window width and direction; :meth:`update` rebuilds when a slider needs another
    (a shorter example, the other direction), and otherwise only sets data, colours and texts.
    ``tokens`` (one list for all examples or one per example) are written under the grid's input
    arrows, the token read at each step.
    """

    main_controls = ("step", "unit")  # what a saved HTML file keeps working first

    WINDOW = 10  # steps shown in the grid at most

    def __init__(
        self,
        trace: Any,
        *,
        tokens: Sequence[str] | Sequence[Sequence[str]] | None = None,
        example: int = 0,
        direction: int = 0,
        step: int = 0,
    ) -> None:
        self.trace = trace
        self.tokens = per_example(tokens, trace.h.shape[2], [int(n) for n in trace.lengths])
        self.states = _unit_states(trace)  # name -> (L, D, B, T, units)
        self.gates = {name: getattr(trace, name) for name in _gates(trace)}
        self.norms = _state_norms(self.states)  # one scale per state for every view
        self.num_layers = trace.h.shape[0]
        self.units = next(iter(self.states.values())).shape[-1]
        self.note = _projection_note(trace)
        self.shape = self._shape(example, direction, step)
        self.parts: dict = {}

    def _shape(self, example: int, direction: int, step: int) -> tuple[int, int, int, int]:
        """``(window width, direction, clamped step, window start)`` for these slider values."""
        length = int(self.trace.lengths[example])
        step = min(step, length - 1)  # shorter examples: clamp instead of failing
        t0, t1 = _window(length, step, self.WINDOW)
        return t1 - t0, direction, step, t0

    def build(self, fig: Figure) -> None:
        """Axes, arrows, labels: everything that does not change when a slider moves."""
        width, direction = self.shape[:2]
        parts = self.parts
        parts.clear()
        ax_flow = fig.add_axes((0.09, 0.14, 0.5, 0.74))
        parts["flow"] = _build_state_flow(
            ax_flow, self.num_layers, width, direction, self.norms, self.tokens is not None
        )
        ax_hc = fig.add_axes((0.655, 0.58, 0.29, 0.32))
        ax_gate = fig.add_axes((0.655, 0.14, 0.29, 0.32))
        parts["axes"] = (ax_flow, ax_hc, ax_gate)
        parts["lines"], parts["marks"] = {}, []
        state_colors = dict(zip(self.states, (H_COLOR, C_COLOR), strict=False))
        panels = ((ax_hc, state_colors), (ax_gate, {g: GATE_COLORS[g] for g in self.gates}))
        for ax, colors in panels:
            for k, (name, color) in enumerate(colors.items()):
                (parts["lines"][name],) = ax.plot([], [], color=color, lw=1.2)
                # a coloured name beside the panel: cheaper than a legend
                ax.text(1.02, 0.85 - 0.22 * k, name, color=color, transform=ax.transAxes)
            parts["marks"].append(ax.axvline(0, color="#999999", lw=0.8, ls="--"))
        ax_gate.xaxis.set_major_locator(MaxNLocator(4, integer=True))
        ax_hc.set_xticks([])
        ax_hc.yaxis.set_major_locator(MaxNLocator(3))
        ax_gate.set_yticks([-1, 0, 1])
        ax_gate.set_ylim(-1.05, 1.05)
        ax_gate.set_xlabel("time step t")
        sigmoid = [g for g in self.gates if g in SIGMOID_GATES]
        tanh = [g for g in self.gates if g not in SIGMOID_GATES]
        ax_gate.set_title(
            f"gates {', '.join(sigmoid)} in (0, 1), {', '.join(tanh)} in (-1, 1)"
            if self.gates
            else "no gates: a plain RNN writes all of h at every step",
            fontsize=8,
            y=1.01,
        )
        ax_hc.set_title(" ", fontsize=8, y=1.01)
        ax_flow.set_title(" ", fontsize=8, y=1.01)
        for ax in parts["axes"]:
            # fixed title (y=1.01 above) and axis-label positions: matplotlib then skips
            # measuring every tick label on each redraw to place them
            ax.xaxis.set_label_coords(0.5, -0.13 if ax is ax_flow else -0.3)
            ax.yaxis.set_label_coords(-0.1, 0.5)

    def update(
        self, fig: Figure, *, example: int, layer: int, direction: int, unit: int, step: int
    ) -> None:
        """Show one example, layer, direction, unit and step (a step past the example's end is
        clamped to its last step)."""
        shape = self._shape(example, direction, step)
        if shape[:2] != self.shape[:2]:  # a window or direction of another shape
            self.shape = shape
            fig.clear()
            self.build(fig)
        _, _, step, t0 = shape
        layer, direction = _check_layer(self.trace, layer, direction)
        length = int(self.trace.lengths[example])
        ax_flow, ax_hc, ax_gate = self.parts["axes"]
        tokens = None if self.tokens is None else self.tokens[example]
        flow = self.parts["flow"]
        _update_state_flow(flow, self.states, example, unit, direction, step, t0, tokens)
        ax_flow.title.set_text(  # keeps the title's font (set_title would reset it)
            f"example {example}, unit {unit}, step {step}: "
            f"{_squares_caption(list(self.states), long=False)}"
            + (f"\n{self.note}" if self.note else "")
        )
        steps = np.arange(length)
        lines = self.parts["lines"]
        for name, values in (*self.states.items(), *self.gates.items()):
            lines[name].set_data(steps, to_numpy(values[layer, direction, example, :length, unit]))
        for mark in self.parts["marks"]:
            mark.set_xdata([step, step])
        for ax in (ax_hc, ax_gate):
            ax.set_xlim(-0.5, max(length - 0.5, 0.5))
        shown = np.concatenate([lines[name].get_ydata() for name in self.states])
        lo, hi = float(shown.min()), float(shown.max())
        pad = max(0.05 * (hi - lo), 0.05)
        ax_hc.set_ylim(lo - pad, hi + pad)
        now = ", ".join(
            f"{name}={float(values[layer, direction, example, step, unit]) + 0.0:+.2f}"  # no -0.00
            for name, values in self.states.items()
        )
        ax_hc.title.set_text(f"layer {layer}{' backward' if direction else ''}: {now}")


def state_explorer(
    trace: Any,
    *,
    example: int = 0,
    unit: int = 0,
    step: int = 0,
    tokens: Sequence[str] | Sequence[Sequence[str]] | None = None,
    title: str | None = None,
) -> FigureExplorer:
    """A widget to walk through a trace: example, layer, direction, unit and time step sliders.

    Left: the state-flow grid for the chosen unit (the chosen step highlighted); right: that unit's
    h and c at the chosen layer over time, and its gates, with the step marked (a GRU: h and
    r, z, n). The first view is also a static image (the notebook reads without a kernel). ``step``
    is where the step slider starts (open where something happens); ``title`` defaults to "Inside
    the stacked LSTM" for several layers and "Inside the LSTM" for one ("GRU" for a GRU's trace).
    h and c keep one colour scale each over the whole trace, shown by colour bars. ``tokens``
    (one list for all examples, or one per example) label the steps under the input arrows.
    """
    _check_example(trace, example)
    num_layers, num_directions, batch, seq_len = trace.h.shape[:4]
    step = min(max(step, 0), seq_len - 1)
    view = StateView(trace, tokens=tokens, example=example, step=step)
    _check_unit(unit, view.units)

    def slider(value: int, count: int, desc: str) -> widgets.Widget:
        # a slider whose track has room for its values; a number box for long ranges (256
        # examples on a short track jumped dozens of examples per pixel)
        return index_control(desc, count, value, width="260px")

    controls = {
        "example": slider(example, batch, "example"),
        "layer": slider(num_layers - 1, num_layers, "layer"),
        "direction": slider(0, num_directions, "direction"),
        "unit": slider(unit, view.units, "unit"),
        "step": slider(step, seq_len, "step"),
    }
    stacked = "stacked " if num_layers > 1 else ""
    return FigureExplorer(
        view,
        controls,
        figsize=(8.4, 3.0),
        layout=None,
        title=title or f"Inside the {stacked}{_cell_name(trace)}: move the sliders",
    )
