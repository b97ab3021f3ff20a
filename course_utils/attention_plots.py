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
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from .plots import heatmap, heatmap_grid, shared_norm, to_numpy
from .style import LINE_COLORS, new_figure, styled

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
    labels: Sequence[str] | None = None,
    ax: Axes | None = None,
    norm: Normalize | None = None,
    title: str | None = None,
    xlabel: str = "input step",
    colorbar: bool = True,
) -> Figure:
    """Attention weights over the input sequence, one row per example; padding left blank.

    Args:
        weights: ``(T,)`` or ``(B, T)`` weights (tensor or array).
        lengths: ``(B,)`` real lengths; steps past them are padding and are not drawn.
        positions: ``(B, K)`` relevant steps of each example, outlined in red.
        labels: one label per row (default ``"example i"``).
        norm: a shared colour scale (e.g. from :func:`course_utils.plots.shared_norm`) when several
            figures are compared; default: 0 to the largest real weight.
    """
    m = remove_padding(weights, lengths)
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
        ax.legend(loc="upper right", bbox_to_anchor=(1.0, 1.18), frameon=False, fontsize=7)
    return fig


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
    w = w[:length]
    colors = np.full(length, OTHER_COLOR, dtype=object)
    if positions is not None:
        colors[np.asarray(to_numpy(positions), dtype=int).reshape(-1)] = RELEVANT_COLOR
    if ax is None:
        _, ax = new_figure(figsize=(6.0, 2.2))
    # One LineCollection instead of a Rectangle per bar: the same picture, redrawn much faster.
    steps = np.arange(length)
    ax.vlines(steps, 0, w, colors=list(colors), linewidth=max(1.5, 180 / length))
    top = ymax if ymax is not None else max(float(w.max()) * 1.1, 1e-6)
    if show_uniform:
        ax.axhline(1.0 / length, color="black", linestyle=":", linewidth=1)
        ax.text(
            0.995,
            1.0 / length / top,
            f"uniform 1/{length}",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=7,
        )
    ax.set_xlim(-0.6, length - 0.4)
    ax.set_ylim(0, top)
    ax.set_xticks(steps[:: max(1, int(np.ceil(length / 8)))])
    ax.set_yticks([0, round(top / 2, 2)])
    ax.set_xlabel("input step")
    ax.set_ylabel("weight")
    if title:
        # Text in axes coordinates: set_title would re-measure tick labels at every redraw.
        ax.text(0.0, 1.03, title, transform=ax.transAxes, fontsize=9, va="bottom")
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
) -> Figure:
    """Gradient norm per input step as a map: one row per model (e.g. depth), log10 colour scale.

    Args:
        norms: label -> ``(T,)`` or ``(B, T)`` norms from
            :func:`course_utils.gradients.input_gradient_norms` (``(B, T)`` is averaged over B).
        norm: a shared scale over log10 values when maps are compared (e.g. at init and trained).
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
        colorbar_label=r"$\log_{10} \|\partial L / \partial x_t\|$",
    )


def gradient_norm_scale(*groups: Mapping[str, object]) -> Normalize:
    """One log10 colour scale for several :func:`plot_gradient_map` calls (e.g. init and trained)."""
    return shared_norm([_log10(v) for group in groups for v in _profiles(group).values()])


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
    for k, (label, v) in enumerate(profiles.items()):
        ax.plot(
            np.arange(len(v)),
            v,
            color=LINE_COLORS[k % len(LINE_COLORS)],
            label=label,
            marker="o",
            markersize=2.5,
            linewidth=1.4,
        )
    for m in () if marks is None else marks:
        ax.axvline(int(m), color=RELEVANT_COLOR, linestyle="--", linewidth=0.8)
    ax.set_yscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    _decade_ticks(ax)
    ax.set_xlabel("input step $t$")
    ax.set_ylabel(r"$\|\partial L / \partial x_t\|$")
    ax.legend(frameon=False, loc="upper left")
    if title:
        # Text in axes coordinates: set_title would re-measure tick labels at every redraw.
        ax.text(0.5, 1.03, title, transform=ax.transAxes, ha="center", va="bottom", fontsize=10)
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
    log10 colour scale. Exact zeros (inputs from the future) are left blank."""
    if not maps:
        raise ValueError("expected a mapping label -> (T, T) connectivity map, got an empty one")
    mats = [_log10(m) for m in maps.values()]
    return heatmap_grid(
        mats,
        ncols=len(mats),
        titles=list(maps),
        xlabel="input step $s$",
        ylabel="output step $t$",
        colorbar_label=r"$\log_{10} \|\partial h_t / \partial x_s\|$",
        suptitle=suptitle,
        fig=fig,
        panel_size=(2.6, 2.4),
    )


def _stacked_axes(
    fig: Figure, n: int, *, left: float, right: float, top: float, bottom: float, gap: float = 0.0
) -> list[Axes]:
    """``n`` axes stacked top to bottom at fixed positions (figure fractions).

    Widgets place their axes themselves: no layout engine runs at each redraw (fast), and positions
    hold even when a savefig turns rcParams' constrained layout on for the reused figure.
    """
    # Savefig restores a figure without a layout engine by re-reading rcParams, so after the first
    # redraw under use_course_style() the reused figure would run constrained layout (and warn, since
    # our axes are placed by hand). An explicit "none" engine survives the restore.
    fig.set_layout_engine("none")
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

    def draw(fig: Figure, example: int) -> None:
        axes = _stacked_axes(fig, n_panels, left=0.09, right=0.98, top=0.93, bottom=0.1, gap=0.09)
        length, p = int(lens[example]), None if pos is None else pos[example]
        k = 0
        if vals is not None:
            plot_attention_bars(
                vals[example],
                length=length,
                positions=p,
                ax=axes[0],
                ymax=1.0,
                show_uniform=False,
                title=f"example {example}: input values (length {length}, relevant steps in red)",
            )
            axes[0].set_ylabel("value")
            axes[0].set_xlabel("")
            axes[0].tick_params(labelbottom=False)
            k = 1
        for ax, (name, w) in zip(axes[k:], rows.items(), strict=True):
            title = name
            if p is not None:
                title += f": {float(w[example, p].sum()):.0%} of the weight on the relevant steps"
            padding = float(np.nansum(w[example, length:]))
            if padding >= 0.005:
                title += f"; {padding:.0%} on padding (not drawn)"
            plot_attention_bars(
                w[example], length=length, positions=p, ax=ax, ymax=ymax, title=title
            )
            if ax is not axes[-1]:
                ax.set_xlabel("")
                ax.tick_params(labelbottom=False)

    slider = widgets.IntSlider(value=0, min=0, max=batch - 1, description="example")
    return FigureExplorer(
        draw, {"example": slider}, figsize=(6.5, 1.35 * n_panels + 0.3), title=title, layout="none"
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

    def draw(fig: Figure, stage: str, example: int) -> None:
        ax = _stacked_axes(fig, 1, left=0.11, right=0.98, top=0.9, bottom=0.16)[0]
        profiles = {label: v[example] for label, v in data[stage].items()}
        plot_gradient_profiles(
            profiles,
            ax=ax,
            ylim=ylim,
            marks=None if pos is None else pos[example],
            title=f"{stage}, example {example}"
            + ("" if pos is None else " (dashed: marked steps)"),
        )

    controls = {
        "stage": widgets.Dropdown(options=list(data), description="when"),
        "example": widgets.IntSlider(value=0, min=0, max=batch - 1, description="example"),
    }
    return FigureExplorer(draw, controls, figsize=(7.0, 3.0), title=title, layout="none")


__all__ = [
    "attention_explorer",
    "gradient_explorer",
    "gradient_norm_scale",
    "plot_attention_bars",
    "plot_attention_weights",
    "plot_connectivity_grid",
    "plot_gradient_map",
    "plot_gradient_profiles",
    "remove_padding",
]
