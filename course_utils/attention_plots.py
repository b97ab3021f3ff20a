"""Pictures of attention over an input sequence and of gradient connectivity per depth.

Compute apart from drawing: the models return weights (:mod:`course_utils.attention_pooling`) and the
gradients come from :mod:`course_utils.gradients`; the functions here take those tensors and return a
``Figure``. Padding is removed before drawing (cells past an example's length stay blank), axes are
labelled, and panels that are compared share one colour or y scale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .plots import heatmap, heatmap_grid, shared_norm, to_numpy
from .style import LINE_COLORS, new_figure, styled

#: Colour of the relevant (marked) steps in every attention picture.
RELEVANT_COLOR = "#d62728"
#: Colour of the other steps.
OTHER_COLOR = "#9aa5b1"
#: What :func:`course_utils.gradients.input_gradient_norms` differentiates by default: the output.
GRADIENT_QUANTITY = r"\partial \hat y / \partial x_t"


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
    labels: Sequence[str] | None = None,
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
        labels: one label per row (default ``"example i"``).
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
    labels = list(labels) if labels is not None else [f"example {i}" for i in range(len(m))]
    norm = norm or shared_norm([m], vmin=0.0)
    fig = heatmap(
        m,
        ax=ax,
        norm=norm,
        x_labels=[str(t) for t in range(m.shape[1])],
        y_labels=labels,
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


def _log10(values) -> np.ndarray:
    v = to_numpy(values)
    with np.errstate(divide="ignore"):
        out = np.log10(v)
    out[~np.isfinite(out)] = np.nan  # exact zeros (e.g. the future in a causal model) stay blank
    return out


def _profiles(norms: Mapping[str, object]) -> dict[str, np.ndarray]:
    if not norms:
        raise ValueError("expected a mapping label -> gradient norms, got an empty one")
    out = {}
    for label, values in norms.items():
        v = to_numpy(values)
        v = v.mean(axis=0) if v.ndim == 2 else v
        if v.ndim != 1:
            raise ValueError(
                f"norms[{label!r}] must be (T,) or (B, T), got shape {to_numpy(values).shape}"
            )
        out[label] = v
    if len({len(v) for v in out.values()}) != 1:
        raise ValueError("every profile must have the same number of steps")
    return out


@styled
def plot_gradient_map(
    norms: Mapping[str, object],
    *,
    ax: Axes | None = None,
    norm: Normalize | None = None,
    title: str | None = None,
    ylabel: str = "depth",
    quantity: str = GRADIENT_QUANTITY,
) -> Figure:
    """Gradient norm per input step as a map: one row per model (e.g. depth), log10 colour scale.

    Args:
        norms: label -> ``(T,)`` or ``(B, T)`` norms from
            :func:`course_utils.gradients.input_gradient_norms` (``(B, T)`` is averaged over B).
        norm: a shared scale over log10 values when maps are compared (e.g. at init and trained).
        quantity: what was differentiated, in mathtext, for the colour bar. The default is the
            model's output (``input_gradient_norms`` differentiates the summed outputs ``ŷ``); pass
            e.g. ``"\\partial L / \\partial x_t"`` when the norms come from a loss objective.
    """
    profiles = _profiles(norms)
    m = np.stack([_log10(v) for v in profiles.values()])  # (n_models, T)
    return heatmap(
        m,
        ax=ax,
        norm=norm or shared_norm([m]),
        y_labels=list(profiles),
        x_labels=[str(t) for t in range(m.shape[1])],
        xlabel="input step $t$",
        ylabel=ylabel,
        title=title,
        colorbar_label=rf"$\log_{{10}} \|{quantity}\|$",
    )


def gradient_norm_scale(*groups: Mapping[str, object]) -> Normalize:
    """One log10 colour scale for several :func:`plot_gradient_map` calls (e.g. init and trained)."""
    return shared_norm([_log10(v) for group in groups for v in _profiles(group).values()])


class _ProfilePanel:
    """Gradient-norm lines (one per label) on a log axis, built once and then updated in place."""

    def __init__(self, ax: Axes, labels: Sequence[str], *, n_marks: int = 0) -> None:
        self.ax = ax
        self.lines = [
            ax.plot(
                [],
                [],
                color=LINE_COLORS[k % len(LINE_COLORS)],
                label=label,
                marker="o",
                markersize=2.5,
                linewidth=1.4,
            )[0]
            for k, label in enumerate(labels)
        ]
        self.marks = [
            ax.axvline(0, color=RELEVANT_COLOR, linestyle="--", linewidth=0.8)
            for _ in range(n_marks)
        ]
        ax.set_yscale("log")
        ax.set_xlabel("input step $t$")
        ax.set_ylabel(rf"$\|{GRADIENT_QUANTITY}\|$")
        ax.legend(frameon=False, loc="upper left")
        # Text in axes coordinates: set_title would re-measure tick labels at every redraw.
        self.title = ax.text(
            0.5, 1.03, "", transform=ax.transAxes, ha="center", va="bottom", fontsize=10
        )

    def update(self, profiles: Sequence[np.ndarray], marks=(), title: str = "") -> None:
        """New ``(T,)`` profiles (in the order of the labels) and marked steps."""
        for line, v in zip(self.lines, profiles, strict=True):
            line.set_data(np.arange(len(v)), v)
        for line, m in zip(self.marks, marks, strict=True):
            line.set_xdata([int(m), int(m)])
        self.title.set_text(title)

    def set_limits(self, n_steps: int, ylim: tuple[float, float] | None = None) -> None:
        """x over ``n_steps`` with matplotlib's default margins; y fixed, or fitted to the data."""
        if ylim is None:
            self.ax.relim()
            self.ax.autoscale_view(scalex=False)
        else:
            self.ax.set_ylim(*ylim)
        margin = 0.05 * max(n_steps - 1, 1)
        self.ax.set_xlim(-margin, n_steps - 1 + margin)
        _decade_ticks(self.ax)


@styled
def plot_gradient_profiles(
    norms: Mapping[str, object],
    *,
    ax: Axes | None = None,
    title: str | None = None,
    marks: Sequence[int] | None = None,
    ylim: tuple[float, float] | None = None,
) -> Figure:
    """Gradient norm per input step as lines on a log axis, one line per label (depth).

    ``marks``: steps to flag with dashed vertical lines (e.g. the adding problem's marked steps).
    """
    profiles = _profiles(norms)
    if ax is None:
        _, ax = new_figure(figsize=(6.0, 2.6))
    marks = [] if marks is None else list(marks)
    panel = _ProfilePanel(ax, list(profiles), n_marks=len(marks))
    panel.update(list(profiles.values()), marks, title or "")
    panel.set_limits(len(next(iter(profiles.values()))), ylim)
    return ax.figure


def _decade_ticks(ax: Axes, max_ticks: int = 8) -> None:
    """Plain-text ticks at powers of ten and no minor ticks on a log y axis.

    Matplotlib's default log ticks are mathtext (``$10^{-3}$``) plus minor ticks: several times
    the cost of the rest of a small figure, which matters for widget redraws.
    """
    from matplotlib.ticker import NullLocator

    lo, hi = ax.get_ylim()
    first, last = int(np.ceil(np.log10(lo))), int(np.floor(np.log10(hi)))
    step = max(1, int(np.ceil((last - first + 1) / max_ticks)))
    exponents = list(range(first, last + 1, step))
    ax.set_yticks([10.0**e for e in exponents], [f"1e{e}" for e in exponents])
    ax.yaxis.set_minor_locator(NullLocator())


@styled
def plot_connectivity_grid(
    maps: Mapping[str, object], *, fig: Figure | None = None, suptitle: str | None = None
) -> Figure:
    """Distill-style connectivity matrices (output step x input step), one panel per label, one
    log10 colour scale. Exact zeros (inputs from the future) are left blank.

    Entry ``[t, s]`` is what :func:`course_utils.gradients.connectivity_map` measures: the norm of
    the gradient of the summed units of ``h_t`` with respect to ``x_s`` (units of opposite sign can
    cancel), which is what the colour bar says; it is not the norm of the Jacobian ``dh_t/dx_s``."""
    if not maps:
        raise ValueError("expected a mapping label -> (T, T) connectivity map, got an empty one")
    mats = [_log10(m) for m in maps.values()]
    return heatmap_grid(
        mats,
        ncols=len(mats),
        titles=list(maps),
        xlabel="input step $s$",
        ylabel="output step $t$",
        # connectivity_map differentiates the units' sum (they can cancel), not a norm of a Jacobian
        colorbar_label=r"$\log_{10} \|\partial (\sum_k h_{t,k}) / \partial x_s\|$",
        suptitle=suptitle,
        fig=fig,
        panel_size=(2.6, 2.4),
    )


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


def attention_explorer(
    weights: Mapping[str, object],
    *,
    lengths,
    positions=None,
    inputs=None,
    title: str | None = "Attention over the input sequence",
):
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
    import ipywidgets as widgets

    from .widgets import FigureExplorer

    if not weights:
        raise ValueError("expected a mapping model name -> (B, T) weights, got an empty one")
    rows = {name: _as_rows(w, f"weights[{name!r}]") for name, w in weights.items()}
    batch, seq_len = next(iter(rows.values())).shape
    if any(w.shape != (batch, seq_len) for w in rows.values()):
        raise ValueError("every model's weights must have the same shape (batch, seq_len)")
    lens = _lengths(lengths, batch, seq_len)
    pos = (
        None if positions is None else np.asarray(to_numpy(positions), dtype=int).reshape(batch, -1)
    )
    vals = None if inputs is None else _as_rows(inputs, "inputs")
    ymax = 1.05 * max(float(np.nanmax(remove_padding(w, lens))) for w in rows.values())
    n_panels = len(rows) + (vals is not None)

    panels: list[_BarPanel] = []

    def build(fig: Figure) -> None:
        """First call (or after a failed draw cleared the figure): axes, labels and artists."""
        axes = _stacked_axes(fig, n_panels, left=0.09, right=0.98, top=0.93, bottom=0.1, gap=0.09)
        panels.clear()
        if vals is not None:
            panels.append(_BarPanel(axes[0], ymax=1.0, show_uniform=False))
            axes[0].set_ylabel("value")
        panels.extend(_BarPanel(ax, ymax=ymax) for ax in axes[len(panels) :])
        for ax in axes[:-1]:
            ax.set_xlabel("")
            ax.tick_params(labelbottom=False)

    def draw(fig: Figure, example: int) -> None:
        if not fig.axes:
            build(fig)
        length, p = int(lens[example]), None if pos is None else pos[example]
        k = 0
        if vals is not None:
            panels[0].update(
                vals[example],
                length,
                p,
                f"example {example}: input values (length {length}, relevant steps in red)",
            )
            k = 1
        for panel, (name, w) in zip(panels[k:], rows.items(), strict=True):
            title = name
            if p is not None:
                title += f": {float(w[example, p].sum()):.0%} of the weight on the relevant steps"
            padding = float(np.nansum(w[example, length:]))
            if padding >= 0.005:
                title += f"; {padding:.0%} on padding (not drawn)"
            panel.update(w[example], length, p, title)

    slider = widgets.IntSlider(value=0, min=0, max=batch - 1, description="example")
    return FigureExplorer(
        draw,
        {"example": slider},
        figsize=(6.5, 1.35 * n_panels + 0.3),
        title=title,
        layout="none",
        clear=False,
    )


def gradient_explorer(
    norms: Mapping[str, Mapping[str, object]],
    *,
    positions=None,
    title: str | None = "Gradient norm per input step, one example at a time",
):
    """A widget: pick when (e.g. "at init", "trained") and an example; see its gradient profile per
    depth on a log axis whose limits stay fixed across every view.

    Args:
        norms: stage -> (depth label -> ``(B, T)`` per-example norms), same ``B`` everywhere.
        positions: ``(B, K)`` steps to flag (e.g. the adding problem's marked steps).
    """
    import ipywidgets as widgets

    from .widgets import FigureExplorer

    if not norms:
        raise ValueError("expected a mapping stage -> (label -> (B, T) norms), got an empty one")
    data = {
        stage: {k: _as_rows(v, f"norms[{stage!r}][{k!r}]") for k, v in group.items()}
        for stage, group in norms.items()
    }
    every = np.concatenate([v.reshape(-1) for g in data.values() for v in g.values()])
    positive = every[every > 0]
    if positive.size == 0:
        raise ValueError("every gradient norm is 0: nothing to draw on a log axis")
    ylim = (float(positive.min()) / 2, float(positive.max()) * 2)
    batch = next(iter(next(iter(data.values())).values())).shape[0]
    pos = (
        None if positions is None else np.asarray(to_numpy(positions), dtype=int).reshape(batch, -1)
    )

    labels = list(next(iter(data.values())))
    if any(list(group) != labels for group in data.values()):
        raise ValueError(f"every stage must have the same labels, in the same order: {labels}")
    n_steps = next(iter(next(iter(data.values())).values())).shape[1]
    panels: list[_ProfilePanel] = []

    def draw(fig: Figure, stage: str, example: int) -> None:
        if not fig.axes:  # first call (or after a failed draw): axes, legend and ticks once
            ax = _stacked_axes(fig, 1, left=0.11, right=0.8, top=0.9, bottom=0.16)[0]
            panels[:] = [_ProfilePanel(ax, labels, n_marks=0 if pos is None else pos.shape[1])]
            # the legend beside the axes: inside, it covered the trained profiles
            ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
            panels[0].set_limits(n_steps, ylim)
        panels[0].update(
            [v[example] for v in data[stage].values()],
            () if pos is None else pos[example],
            f"{stage}, example {example}" + ("" if pos is None else " (dashed: marked steps)"),
        )

    controls = {
        "stage": widgets.Dropdown(options=list(data), description="when"),
        "example": widgets.IntSlider(value=0, min=0, max=batch - 1, description="example"),
    }
    return FigureExplorer(
        draw, controls, figsize=(7.0, 3.0), title=title, layout="none", clear=False
    )


__all__ = [
    "attention_explorer",
    "figure_legend",
    "gradient_explorer",
    "gradient_norm_scale",
    "plot_attention_bars",
    "plot_attention_weights",
    "plot_connectivity_grid",
    "plot_gradient_map",
    "plot_gradient_profiles",
    "remove_padding",
]
