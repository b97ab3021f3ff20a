"""Pictures of gradient connectivity: gradient norm per input step and per depth, on a log scale.

The gradients come from :mod:`course_utils.gradients` (compute apart from drawing); the functions here
take those norms and return a ``Figure`` or an explorer. Exact zeros (inputs from the future in a
causal model) stay blank, axes are labelled, and compared panels share one log10 scale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from .attention_plots import RELEVANT_COLOR, _as_rows, _stacked_axes
from .plots import heatmap, heatmap_grid, shared_norm, to_numpy
from .style import LINE_COLORS, new_figure, styled
from .widgets import FigureExplorer, View

#: What :func:`course_utils.gradients.input_gradient_norms` differentiates by default: the output.
GRADIENT_QUANTITY = r"\partial \hat y / \partial x_t"


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


class GradientView(View):
    """The gradient explorer's figure: one example's gradient norm per input step, one line per
    depth, on a log axis whose limits stay fixed across every view (marked steps dashed).

    Axes, legend and ticks are built once (:meth:`build`); an update only sets the lines' data,
    the marks and the title.

    Args:
        norms: stage -> (depth label -> ``(B, T)`` per-example norms), same ``B``, ``T`` and
            labels everywhere.
        positions: ``(B, K)`` steps to flag (e.g. the adding problem's marked steps).
    """

    def __init__(self, norms: Mapping[str, Mapping[str, object]], positions=None) -> None:
        if not norms:
            raise ValueError(
                "expected a mapping stage -> (label -> (B, T) norms), got an empty one"
            )
        self.data = {
            stage: {k: _as_rows(v, f"norms[{stage!r}][{k!r}]") for k, v in group.items()}
            for stage, group in norms.items()
        }
        every = np.concatenate([v.reshape(-1) for g in self.data.values() for v in g.values()])
        positive = every[every > 0]
        if positive.size == 0:
            raise ValueError("every gradient norm is 0: nothing to draw on a log axis")
        self.ylim = (float(positive.min()) / 2, float(positive.max()) * 2)
        first = next(iter(next(iter(self.data.values())).values()))  # (B, T)
        self.batch, self.n_steps = first.shape
        self.positions = (
            None
            if positions is None
            else np.asarray(to_numpy(positions), dtype=int).reshape(self.batch, -1)
        )
        self.labels = list(next(iter(self.data.values())))
        if any(list(group) != self.labels for group in self.data.values()):
            raise ValueError(
                f"every stage must have the same labels, in the same order: {self.labels}"
            )
        self.panel: _ProfilePanel | None = None

    def build(self, fig: Figure) -> None:
        """The log axis, one line per depth, the marks, the legend and the fixed limits."""
        ax = _stacked_axes(fig, 1, left=0.11, right=0.8, top=0.9, bottom=0.16)[0]
        n_marks = 0 if self.positions is None else self.positions.shape[1]
        self.panel = _ProfilePanel(ax, self.labels, n_marks=n_marks)
        # the legend beside the axes: inside, it covered the trained profiles
        ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        self.panel.set_limits(self.n_steps, self.ylim)

    def update(self, fig: Figure, *, stage: str, example: int) -> None:
        """Show one stage's profiles of one example."""
        marked = self.positions is not None
        self.panel.update(
            [v[example] for v in self.data[stage].values()],
            self.positions[example] if marked else (),
            f"{stage}, example {example}" + (" (dashed: marked steps)" if marked else ""),
        )


def gradient_explorer(
    norms: Mapping[str, Mapping[str, object]],
    *,
    positions=None,
    title: str | None = "Gradient norm per input step, one example at a time",
) -> FigureExplorer:
    """A widget: pick when (e.g. "at init", "trained") and an example; see its gradient profile per
    depth on a log axis whose limits stay fixed across every view.

    Args:
        norms: stage -> (depth label -> ``(B, T)`` per-example norms), same ``B`` everywhere.
        positions: ``(B, K)`` steps to flag (e.g. the adding problem's marked steps).
    """
    import ipywidgets as widgets

    view = GradientView(norms, positions)
    controls = {
        "stage": widgets.Dropdown(options=list(view.data), description="when"),
        "example": widgets.IntSlider(value=0, min=0, max=view.batch - 1, description="example"),
    }
    return FigureExplorer(view, controls, figsize=(7.0, 3.0), title=title, layout=None)


__all__ = [
    "GRADIENT_QUANTITY",
    "GradientView",
    "gradient_explorer",
    "gradient_norm_scale",
    "plot_connectivity_grid",
    "plot_gradient_map",
    "plot_gradient_profiles",
]
