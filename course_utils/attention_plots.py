"""Pictures of attention over an input sequence: heatmaps, bars and an explorer per example.

Compute apart from drawing: the models return weights (:mod:`course_utils.attention_pooling`); the
functions here take those tensors and return a ``Figure``. Padding is removed before drawing (cells
past an example's length stay blank), axes are labelled, and panels that are compared share one colour
or y scale. Gradient connectivity is drawn by :mod:`course_utils.gradient_plots`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ipywidgets as widgets
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .plots import heatmap, shared_norm, to_numpy
from .style import new_figure, styled
from .widgets import FigureExplorer, View

#: Colour of the relevant (marked) steps in every attention picture.
RELEVANT_COLOR = "#d62728"
#: Colour of the other steps.
OTHER_COLOR = "#9aa5b1"


def _as_rows(values, what: str) -> np.ndarray:
    m = to_numpy(values)
    if m.ndim == 1:
        m = m[None, :]
    if m.ndim != 2:
        raise ValueError(f"{what} must be (seq_len,) or (batch, seq_len), got shape {m.shape}")
    return m


def _lengths(lengths, batch: int, seq_len: int) -> np.ndarray:
    if lengths is None:
        return np.full(batch, seq_len, dtype=int)
    out = np.asarray(to_numpy(lengths), dtype=int).reshape(-1)
    if len(out) != batch:
        raise ValueError(f"got {len(out)} lengths for {batch} rows of weights")
    if out.min() < 1 or out.max() > seq_len:
        raise ValueError(f"lengths must lie in [1, {seq_len}], got {out.min()}..{out.max()}")
    return out


def remove_padding(weights, lengths=None) -> np.ndarray:
    """``(B, T)`` weights as floats with every step at or past ``lengths[b]`` set to NaN, cut to the
    longest real length, so padding is never drawn (NaN cells are blank)."""
    m = _as_rows(weights, "weights").copy()
    lens = _lengths(lengths, *m.shape)
    m[np.arange(m.shape[1])[None, :] >= lens[:, None]] = np.nan
    return m[:, : int(lens.max())]


@styled
def plot_attention_weights(
    weights,
    *,
    lengths=None,
    positions=None,
    tokens: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    ax: Axes | None = None,
    norm: Normalize | None = None,
    title: str | None = None,
    xlabel: str = "input step",
    colorbar: bool = True,
    show_padding: bool = False,
    legend: bool = True,
) -> Figure:
    """Attention weights over the input sequence, one row per example; padding left blank.

    Args:
        weights: ``(T,)`` or ``(B, T)`` weights (tensor or array).
        lengths: ``(B,)`` real lengths; steps past them are padding and are not drawn, unless
            ``show_padding``.
        show_padding: draw the padded steps too, with a black bar after each row's last real
            step: use it for a layer without a mask, whose weight on padding is the defect.
        positions: ``(B, K)`` relevant steps of each example, outlined in red.
        tokens: one label per step, the columns (default the step numbers).
        row_labels: one label per row (default ``"example i"``).
        norm: a shared colour scale (e.g. from :func:`course_utils.plots.shared_norm`) when several
            figures are compared; default: 0 to the largest real weight.
        legend: draw this panel's legend ("relevant step", "sequence end"); pass False for panels
            side by side and call :func:`figure_legend` once for the figure.
    """
    m = (
        _as_rows(weights, "weights").astype(float)
        if show_padding
        else remove_padding(weights, lengths)
    )
    names = list(row_labels) if row_labels is not None else [f"example {i}" for i in range(len(m))]
    steps = [str(t) for t in (tokens if tokens is not None else range(m.shape[1]))]
    if len(steps) < m.shape[1]:
        raise ValueError(f"got {len(steps)} tokens for {m.shape[1]} steps; pass one per step")
    norm = norm or shared_norm([m], vmin=0.0)
    fig = heatmap(
        m,
        ax=ax,
        norm=norm,
        x_labels=steps[: m.shape[1]],
        y_labels=names,
        xlabel=xlabel,
        title=title,
        colorbar=colorbar,
        colorbar_label="attention weight",
    )
    ax = ax or fig.axes[0]
    if show_padding:
        ends = _lengths(lengths, *m.shape) - 0.5  # the boundary after each row's last real step
        rows = np.arange(len(m))
        ax.vlines(
            ends, rows - 0.5, rows + 0.5, colors="black", linewidths=2.0, label="sequence end"
        )
    if positions is not None:
        pos = np.asarray(to_numpy(positions), dtype=int).reshape(len(m), -1)
        rows = np.repeat(np.arange(len(m)), pos.shape[1])
        ax.scatter(
            pos.reshape(-1),
            rows,
            s=60,
            marker="s",
            facecolors="none",
            edgecolors=RELEVANT_COLOR,
            linewidths=1.2,
            label="relevant step",
        )
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", bbox_to_anchor=(1.0, 1.18), frameon=False, fontsize=7)
    return fig


def figure_legend(fig: Figure, axes: Sequence[Axes] | None = None):
    """One legend below the panels of ``fig`` with every labelled artist once (first panel wins).

    Side-by-side heatmaps would otherwise each carry a legend over their titles; panels drawn with
    ``legend=False`` leave it to this call. Returns the legend (None when nothing is labelled).
    """
    handles: dict[str, object] = {}
    for ax in axes if axes is not None else fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if not handles:
        return None
    return fig.legend(
        list(handles.values()),
        list(handles),
        loc="outside lower center",
        ncols=len(handles),
        frameon=False,
    )


class _BarPanel:
    """The artists of one bar panel (weights over steps), built once and then updated in place.

    A widget redraw then only moves bar ends and changes texts: creating axes, ticks and texts
    again costs several times more than rendering them.
    """

    def __init__(self, ax: Axes, *, ymax: float, show_uniform: bool = True) -> None:
        self.ax = ax
        # One LineCollection instead of a Rectangle per bar: the same picture, redrawn much faster.
        self.bars = LineCollection([], colors=OTHER_COLOR)
        ax.add_collection(self.bars, autolim=False)
        self.ymax = ymax
        self.uniform = None
        if show_uniform:
            self.uniform = ax.axhline(0.0, color="black", linestyle=":", linewidth=1)
            self.uniform_text = ax.text(
                0.995, 0.0, "", transform=ax.transAxes, ha="right", va="bottom", fontsize=7
            )
        # Text in axes coordinates: set_title would re-measure tick labels at every redraw.
        self.title = ax.text(0.0, 1.03, "", transform=ax.transAxes, fontsize=9, va="bottom")
        ax.set_ylim(0, ymax)
        # Ticks up to the tallest bar at round steps (two fixed ticks left bars above the last one).
        ax.yaxis.set_major_locator(MaxNLocator(nbins=3, steps=[1, 2, 5, 10]))
        ax.set_xlabel("input step")
        ax.set_ylabel("weight")

    def update(self, weights: np.ndarray, length: int, positions=None, title: str = "") -> None:
        """Show the first ``length`` of ``weights`` (the rest is padding); ``positions`` in red."""
        w = weights[:length]
        colors = np.full(length, OTHER_COLOR, dtype=object)
        if positions is not None:
            colors[np.asarray(positions, dtype=int).reshape(-1)] = RELEVANT_COLOR
        steps = np.arange(length)
        segments = np.zeros((length, 2, 2))  # (bars, ends, xy)
        segments[:, :, 0] = steps[:, None]
        segments[:, 1, 1] = w
        self.bars.set_segments(segments)
        self.bars.set_color(list(colors))
        self.bars.set_linewidth(max(1.5, 180 / length))
        if self.uniform is not None:
            self.uniform.set_ydata([1.0 / length, 1.0 / length])
            self.uniform_text.set_y(1.0 / length / self.ymax)
            self.uniform_text.set_text(f"uniform 1/{length}")
        self.ax.set_xlim(-0.6, length - 0.4)
        self.ax.set_xticks(steps[:: max(1, int(np.ceil(length / 8)))])
        self.title.set_text(title)


@styled
def plot_attention_bars(
    weights,
    *,
    length: int | None = None,
    positions=None,
    ax: Axes | None = None,
    ymax: float | None = None,
    title: str | None = None,
    show_uniform: bool = True,
) -> Figure:
    """One example's weights as bars over its real steps; relevant steps in red.

    Args:
        weights: ``(T,)`` weights of one example.
        length: its real length (bars past it are padding and are dropped).
        positions: its relevant steps ``(K,)``.
        ymax: top of the y axis, to share one scale across panels.
        show_uniform: draw the level ``1 / length`` that uniform attention would give.
    """
    w = to_numpy(weights).reshape(-1)
    length = int(length or len(w))
    if not 1 <= length <= len(w):
        raise ValueError(f"length must lie in [1, {len(w)}], got {length}")
    if ax is None:
        _, ax = new_figure(figsize=(6.0, 2.2))
    top = ymax if ymax is not None else max(float(w[:length].max()) * 1.1, 1e-6)
    panel = _BarPanel(ax, ymax=top, show_uniform=show_uniform)
    panel.update(w, length, None if positions is None else to_numpy(positions), title or "")
    return ax.figure


def _stacked_axes(
    fig: Figure, n: int, *, left: float, right: float, top: float, bottom: float, gap: float = 0.0
) -> list[Axes]:
    """``n`` axes stacked top to bottom at fixed positions (figure fractions).

    Widgets place their axes themselves: no layout engine runs at each redraw (fast). An
    explorer's figure (``FigureExplorer(layout=None)``) has none, and ``style.figure_to_png``
    keeps it that way.
    """
    height = (top - bottom - gap * (n - 1)) / n
    return [
        fig.add_axes((left, top - (k + 1) * height - k * gap, right - left, height))
        for k in range(n)
    ]


class AttentionBarsView(View):
    """The attention explorer's figure: one panel per model, its weights over an example's real
    steps as bars (relevant steps in red), under an optional panel of the input values.

    Axes placed by hand and built once (:meth:`build`); an update only moves bar ends and changes
    texts.

    Args:
        weights: model name -> ``(B, T)`` weights on the same ``B`` examples.
        lengths: ``(B,)`` real lengths (padding is not drawn).
        positions: ``(B, K)`` relevant steps (red bars).
        inputs: ``(B, T)`` one input feature per step, drawn on top.
    """

    def __init__(self, weights: Mapping[str, object], *, lengths, positions=None, inputs=None):
        if not weights:
            raise ValueError("expected a mapping model name -> (B, T) weights, got an empty one")
        self.rows = {name: _as_rows(w, f"weights[{name!r}]") for name, w in weights.items()}
        batch, seq_len = next(iter(self.rows.values())).shape
        if any(w.shape != (batch, seq_len) for w in self.rows.values()):
            raise ValueError("every model's weights must have the same shape (batch, seq_len)")
        self.batch = batch
        self.lens = _lengths(lengths, batch, seq_len)
        self.pos = (
            None
            if positions is None
            else np.asarray(to_numpy(positions), dtype=int).reshape(batch, -1)
        )
        self.vals = None if inputs is None else _as_rows(inputs, "inputs")
        self.ymax = 1.05 * max(
            float(np.nanmax(remove_padding(w, self.lens))) for w in self.rows.values()
        )
        self.n_panels = len(self.rows) + (self.vals is not None)
        self.panels: list[_BarPanel] = []

    def build(self, fig: Figure) -> None:
        """The stacked axes, their labels and empty bars."""
        axes = _stacked_axes(
            fig, self.n_panels, left=0.09, right=0.98, top=0.93, bottom=0.1, gap=0.09
        )
        self.panels = []
        if self.vals is not None:
            self.panels.append(_BarPanel(axes[0], ymax=1.0, show_uniform=False))
            axes[0].set_ylabel("value")
        self.panels.extend(_BarPanel(ax, ymax=self.ymax) for ax in axes[len(self.panels) :])
        for ax in axes[:-1]:
            ax.set_xlabel("")
            ax.tick_params(labelbottom=False)

    def update(self, fig: Figure, *, example: int) -> None:
        """Show example ``example``: its inputs and each model's weights over its real steps."""
        length = int(self.lens[example])
        p = None if self.pos is None else self.pos[example]
        panels = self.panels
        if self.vals is not None:
            panels[0].update(
                self.vals[example],
                length,
                p,
                f"example {example}: input values (length {length}, relevant steps in red)",
            )
            panels = panels[1:]
        for panel, (name, w) in zip(panels, self.rows.items(), strict=True):
            title = name
            if p is not None:
                title += f": {float(w[example, p].sum()):.0%} of the weight on the relevant steps"
            padding = float(np.nansum(w[example, length:]))
            if padding >= 0.005:
                title += f"; {padding:.0%} on padding (not drawn)"
            panel.update(w[example], length, p, title)


def attention_explorer(
    weights: Mapping[str, object],
    *,
    lengths,
    positions=None,
    inputs=None,
    title: str | None = "Attention over the input sequence",
) -> FigureExplorer:
    """A widget: pick an example, see each model's attention over its real steps.

    Args:
        weights: model name -> ``(B, T)`` weights on the same ``B`` examples.
        lengths: ``(B,)`` real lengths (padding is not drawn).
        positions: ``(B, K)`` relevant steps (red bars).
        inputs: ``(B, T)`` one input feature per step (e.g. the adding problem's values), drawn on
            top so the learner sees what the model attended to.

    Returns:
        a :class:`course_utils.widgets.FigureExplorer` (the last value of a cell shows it).
    """
    view = AttentionBarsView(weights, lengths=lengths, positions=positions, inputs=inputs)
    slider = widgets.IntSlider(value=0, min=0, max=view.batch - 1, description="example")
    return FigureExplorer(
        view,
        {"example": slider},
        figsize=(6.5, 1.35 * view.n_panels + 0.3),
        title=title,
        layout="none",
    )


__all__ = [
    "AttentionBarsView",
    "attention_explorer",
    "figure_legend",
    "plot_attention_bars",
    "plot_attention_weights",
    "remove_padding",
]
