"""Plots of layer-wise [CLS] importance: per layer with its spread, per example, methods compared.

Data in, ``Figure`` out: each function takes :class:`~course_utils.importance.LayerImportance`
objects (computed once), accepts ``ax=`` or ``fig=`` and returns the figure. The explorer widget
(:func:`importance_explorer`, an :class:`ImportanceView`) updates one reused figure when the model,
the method or the example changes.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import Bbox

from .importance import LayerImportance
from .plots import heatmap, to_numpy
from .style import LINE_COLORS, new_figure, styled
from .widgets import FigureExplorer, View

__all__ = [
    "signed_shares",
    "plot_layer_importance",
    "plot_example_importance",
    "plot_method_comparison",
    "plot_accuracy_comparison",
    "importance_explorer",
    "ImportanceView",
]

#: Method colours: the course's line colours without red, which marks the highlighted example.
_METHOD_COLORS = tuple(c for i, c in enumerate(LINE_COLORS) if i != 1)


def _title(ax: Axes, title: str | None, default: str) -> None:
    """``None``: the default title; ``""``: none (the widget writes its own as fast plain text)."""
    if title != "":
        ax.set_title(title or default)


def _finish_layer_axes(
    ax: Axes,
    layers: Sequence[str],
    ylabel: str,
    *,
    legend: bool,
    title: str | None,
    default_title: str,
) -> Figure:
    """The parts every per-layer plot shares: a zero line, layer ticks, labels, title, legend."""
    ax.axhline(0.0, color="#999999", linewidth=0.6, zorder=0)
    ax.set_xticks(np.arange(len(layers)), layers)
    ax.set_xlabel("hidden state ([CLS] of layer)")
    ax.set_ylabel(ylabel)
    _title(ax, title, default_title)
    if legend:
        ax.legend(loc="best", frameon=False, fontsize=7)
    return ax.figure


def _panel_title(ax: Axes, text: str) -> None:
    """A title as plain text above the axes: unlike ``set_title`` it is not re-placed on every draw."""
    ax.text(0.5, 1.03, text, transform=ax.transAxes, ha="center", va="bottom", fontsize=10)


def _fit_ylim(ax: Axes, base: tuple[float, float], values: np.ndarray) -> None:
    """Y limits that hold ``base`` and ``values`` with a 5 % margin (autoscale without relim)."""
    lo, hi = min(base[0], float(values.min())), max(base[1], float(values.max()))
    pad = 0.05 * (hi - lo) or 1.0
    ax.set_ylim(lo - pad if lo < base[0] else lo, hi + pad if hi > base[1] else hi)


def _check_same_layers(imps: Sequence[LayerImportance]) -> None:
    if not imps:
        raise ValueError("need at least one LayerImportance")
    layers = imps[0].layers
    for imp in imps[1:]:
        if imp.layers != layers:
            raise ValueError(
                f"methods cover different layers: {imps[0].method} has {layers}, "
                f"{imp.method} has {imp.layers}"
            )


def _check_index(imp: LayerImportance, index: int) -> None:
    if not 0 <= index < imp.num_examples:
        raise IndexError(f"example index must lie in [0, {imp.num_examples - 1}], got {index}")


def signed_shares(imp: LayerImportance, index: int) -> np.ndarray:
    """One example's scores divided by their total absolute value: ``(L+1,)``, ``sum(|.|) == 1``.

    Puts methods with different units on one axis while keeping the sign (a layer that pushed the
    model *away* from the target stays negative).
    """
    _check_index(imp, index)
    row = to_numpy(imp.scores[index])
    total = np.abs(row).sum()
    return row / total if total > 0 else row


def _highlight(ax: Axes, imp: LayerImportance, index: int) -> Line2D:
    """One example's scores per layer as a red line over the spread."""
    _check_index(imp, index)
    (line,) = ax.plot(
        np.arange(len(imp.layers)),
        to_numpy(imp.scores)[index],
        "-o",
        color=LINE_COLORS[1],
        markersize=3.5,
        linewidth=1.2,
        zorder=5,
        label=f"example {index}",
    )
    return line


@styled
def plot_layer_importance(
    imp: LayerImportance,
    *,
    ax: Axes | None = None,
    highlight: int | None = None,
    title: str | None = None,
    legend: bool = True,
) -> Figure:
    """Per layer: the spread of one method's scores across examples, and one example on top.

    Boxes show the middle half of the examples (whiskers: 5th to 95th percentile), the white line the
    median and the dot the mean. A method with one score per layer (mix weights) is drawn as bars.

    Args:
        imp: the scores of one method, ``(N, L+1)``.
        highlight: an example index to draw as a red line over the boxes.
        legend: label the mean and the highlighted example (off in the widget, where it is slow).
    """
    if ax is None:
        _, ax = new_figure(figsize=(4.2, 2.8))
    scores = to_numpy(imp.scores)  # (N, L+1)
    x = np.arange(len(imp.layers))
    if imp.per_example:
        # Few artists (one bar container, two line collections) keep widget redraws fast.
        p5, q1, med, q3, p95 = np.percentile(scores, [5, 25, 50, 75, 95], axis=0)
        ax.vlines(x, p5, p95, color="#777777", linewidth=0.8, zorder=1)
        ax.bar(
            x,
            q3 - q1,
            bottom=q1,
            width=0.55,
            color="#a9c4e4",
            edgecolor="#555555",
            linewidth=0.6,
            zorder=2,
            label="middle half of examples",
        )
        ax.hlines(med, x - 0.27, x + 0.27, color="white", linewidth=1.4, zorder=3)
        ax.plot(
            x, scores.mean(axis=0), "o", color="#1f3b63", markersize=3.5, zorder=4, label="mean"
        )
    else:
        ax.bar(
            x,
            scores[0],
            width=0.6,
            color="#a9c4e4",
            edgecolor="#555555",
            linewidth=0.8,
            label="same for every example",
        )
    if highlight is not None:
        _highlight(ax, imp, highlight)
    return _finish_layer_axes(
        ax,
        imp.layers,
        imp.unit,
        legend=legend,
        title=title,
        default_title=f"{imp.method}: spread over {imp.num_examples} examples",
    )


@styled
def plot_example_importance(
    imps: Sequence[LayerImportance],
    index: int,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    legend: bool = True,
) -> Figure:
    """One example, every method side by side: grouped bars of signed shares per layer.

    Each method's scores are divided by their total absolute value (:func:`signed_shares`), so
    methods in different units share one axis.
    """
    imps = list(imps)
    _check_same_layers(imps)
    if ax is None:
        _, ax = new_figure(figsize=(4.6, 2.8))
    x = np.arange(len(imps[0].layers))
    width = 0.8 / len(imps)
    for m, imp in enumerate(imps):
        ax.bar(
            x - 0.4 + width * (m + 0.5),
            signed_shares(imp, index),
            width=width,
            color=_METHOD_COLORS[m % len(_METHOD_COLORS)],
            label=imp.method,
        )
    return _finish_layer_axes(
        ax,
        imps[0].layers,
        "signed share of |importance|",
        legend=legend,
        title=title,
        default_title=f"example {index}: methods compared",
    )


@styled
def plot_method_comparison(
    imps: Sequence[LayerImportance], *, ax: Axes | None = None, title: str | None = None
) -> Figure:
    """Methods x layers heatmap of each method's share of mean |importance| (rows sum to 1).

    One colour scale for all rows, so a learner sees at a glance where methods agree on the layers
    that matter and where they do not.
    """
    imps = list(imps)
    _check_same_layers(imps)
    matrix = torch.stack([imp.shares() for imp in imps])  # (methods, L+1)
    if ax is None:
        _, ax = new_figure(figsize=(0.55 * matrix.shape[1] + 2.6, 0.42 * matrix.shape[0] + 1.3))
    return heatmap(
        matrix,
        ax=ax,
        x_labels=imps[0].layers,
        y_labels=[imp.method for imp in imps],
        xlabel="hidden state ([CLS] of layer)",
        annotate=True,
        colorbar_label="share of mean |importance|",
        title=title or "Which layers matter, by method",
    )


@styled
def plot_accuracy_comparison(
    accuracies: Mapping[str, torch.Tensor | Sequence[float]],
    *,
    ax: Axes | None = None,
    chance: float | None = None,
    title: str | None = None,
) -> Figure:
    """Test accuracy per strategy: one dot per seed and a bar at the mean, best at the top.

    Args:
        accuracies: strategy name -> accuracies over seeds.
        chance: draw the majority-class accuracy as a dashed line.
    """
    if not accuracies:
        raise ValueError("need at least one strategy's accuracies")
    names = list(accuracies)
    values = [to_numpy(accuracies[n]).reshape(-1) for n in names]
    order = np.argsort([v.mean() for v in values])  # best last = top of the plot
    if ax is None:
        _, ax = new_figure(figsize=(6.0, 0.38 * len(names) + 1.1))
    for row, i in enumerate(order):
        ax.barh(
            row, values[i].mean(), height=0.6, color="#a9c4e4", edgecolor="#555555", linewidth=0.6
        )
        ax.plot(values[i], np.full(len(values[i]), row), "o", color="#1f3b63", markersize=3.5)
    if chance is not None:
        ax.axvline(chance, color="#999999", linestyle="--", linewidth=0.8)
        ax.text(chance, -0.75, " majority class", color="#777777", fontsize=7, va="bottom")
        ax.set_ylim(-0.8, len(names) - 0.4)
    ax.set_yticks(np.arange(len(names)), [names[i] for i in order])
    lo = min(min(v.min() for v in values), chance if chance is not None else 1.0)
    ax.set_xlim(max(0.0, lo - 0.05), 1.0)
    ax.set_xlabel("test accuracy (bar: mean, dots: seeds)")
    ax.set_title(title or "Pooling strategies compared")
    return ax.figure


def _as_models(imps) -> dict[str, dict[str, LayerImportance]]:
    """``{model: {method: LayerImportance}}`` from a nested mapping, a flat mapping or a list."""
    if isinstance(imps, Mapping) and imps and all(isinstance(v, Mapping) for v in imps.values()):
        return {str(m): dict(v) for m, v in imps.items()}
    flat = dict(imps) if isinstance(imps, Mapping) else {imp.method: imp for imp in imps}
    return {"model": flat}


class ImportanceView(View):
    """The importance explorer's figure: one method's scores per layer over all examples, the
    chosen example in red (top), and that example under every method of the model (bottom).

    Each panel is built the first time it is shown, then hidden or updated: building axes, ticks
    and legends is most of a redraw's cost; moving one line and a few bar heights is cheap. Panels
    are keyed by what fixes their artists: the top one by (model, method), the bottom one by model
    (its methods and key). Axes are placed by hand (no layout engine).

    Args:
        models: ``{model: {method: LayerImportance}}``, every entry on the same examples and layers.
        texts, targets, predictions (``{model: tensor or None}``), class_names: the caption.
        model: the model shown when no "model" control is given (a single model).
    """

    #: Stacked panels share one column per layer, so the layer names are written once (bottom).
    TOP_BOX, BOTTOM_BOX = (0.13, 0.53, 0.60, 0.29), (0.13, 0.11, 0.60, 0.29)

    def __init__(
        self,
        models: Mapping[str, Mapping[str, LayerImportance]],
        *,
        texts: Sequence[str] | None = None,
        targets: torch.Tensor | None = None,
        predictions: Mapping[str, torch.Tensor | None] | None = None,
        class_names: Sequence[str] = ("negative", "positive"),
        model: str | None = None,
    ) -> None:
        self.models = {name: dict(by_method) for name, by_method in models.items()}
        every = [imp for by_method in self.models.values() for imp in by_method.values()]
        _check_same_layers(every)
        self.texts, self.targets, self.class_names = texts, targets, class_names
        self.predictions = dict(predictions or {})
        self.model = model or next(iter(self.models))
        self.xlim = (-0.5, len(every[0].layers) - 0.5)
        self.panels: dict[tuple[str, ...], Axes] = {}
        self.spread: dict[Axes, tuple[Bbox, Line2D]] = {}  # a top panel's data limits, its line
        self.caption_text = None

    def caption(self, name: str, i: int) -> str:
        """Example ``i``'s number, label, ``name``'s prediction and sentence (shortened)."""
        parts = [f"example {i}"]
        if self.targets is not None:
            parts.append(f"label: {self.class_names[int(self.targets[i])]}")
        if self.predictions.get(name) is not None:
            parts.append(f"{name} predicts: {self.class_names[int(self.predictions[name][i])]}")
        head = ", ".join(parts)
        if self.texts is None:
            return head
        return head + "\n" + textwrap.shorten(f'"{self.texts[i]}"', width=95, placeholder=' ..."')

    def build(self, fig: Figure) -> None:
        """The caption; the panels come as they are first shown."""
        self.panels.clear()
        self.spread.clear()
        self.caption_text = fig.text(0.5, 0.98, "", ha="center", va="top", fontsize=9)

    def _top(self, fig: Figure, name: str, method: str, index: int) -> Axes:
        by_method = self.models[name]
        if method not in by_method:
            ax = self.panels.get(("missing",))
            if ax is None:
                ax = self.panels[("missing",)] = fig.add_axes(self.TOP_BOX)
                ax.set_axis_off()
                ax.text(0.5, 0.5, "", ha="center", va="center", transform=ax.transAxes)
            ax.texts[0].set_text(f"{name!r} has no {method!r}\n(available: {', '.join(by_method)})")
            return ax
        imp = by_method[method]
        ax = self.panels.get(("top", name, method))
        if ax is None:
            ax = self.panels[("top", name, method)] = fig.add_axes(self.TOP_BOX)
            plot_layer_importance(imp, ax=ax, legend=False, title="")
            extra = " (red: this example)" if imp.per_example else " (one value for all)"
            _panel_title(ax, f"{method}: all examples{extra}")
            ax.set_xlabel("")
            ax.tick_params(labelbottom=False)  # the bottom panel names the layers
            ax.set_ylabel(textwrap.fill(imp.unit, 20))
            ax.set_xlim(self.xlim)
            ax.yaxis.set_major_locator(MaxNLocator(nbins=3))  # fewer tick labels: text is costly
            if imp.per_example:  # the spread's data limits, without any one example
                self.spread[ax] = ax.dataLim.frozen(), _highlight(ax, imp, index)
        if imp.per_example:
            # y limits as matplotlib's autoscale fits the spread and this example (whatever was
            # shown before): a frame depends on the control values only
            limits, line = self.spread[ax]
            row = to_numpy(imp.scores[index])
            line.set_ydata(row)
            line.set_label(f"example {index}")
            ax.dataLim.set(limits)
            ax.update_datalim(np.column_stack([line.get_xdata(), row]))
            ax.autoscale_view(scalex=False)
        return ax

    def _bottom(self, fig: Figure, name: str, index: int) -> Axes:
        by_method = list(self.models[name].values())
        ax = self.panels.get(("bottom", name))
        if ax is None:
            ax = self.panels[("bottom", name)] = fig.add_axes(self.BOTTOM_BOX)
            plot_example_importance(by_method, index, ax=ax, legend=False, title="")
            _panel_title(ax, "this example, every method")
            ax.set_ylabel(textwrap.fill(ax.get_ylabel(), 20))
            ax.set_xlim(self.xlim)
            for m, imp in enumerate(by_method):  # a key as coloured text: cheaper than a legend
                color = _METHOD_COLORS[m % len(_METHOD_COLORS)]
                ax.text(
                    1.03,
                    1.0 - 0.14 * m,
                    imp.method,
                    color=color,
                    fontsize=8,
                    transform=ax.transAxes,
                    va="top",
                )
            ax.yaxis.set_major_locator(MaxNLocator(nbins=3))
        shares = [signed_shares(imp, index) for imp in by_method]
        for bars, values in zip(ax.containers, shares, strict=True):
            for bar, value in zip(bars, values, strict=True):
                bar.set_height(value)
        _fit_ylim(ax, (0.0, 0.0), np.concatenate(shares))
        return ax

    def update(self, fig: Figure, *, method: str, index: int, model: str | None = None) -> None:
        """Show ``model``'s ``method`` (top) and every method (bottom) for example ``index``."""
        name = model or self.model
        shown = {self._top(fig, name, method, index), self._bottom(fig, name, index)}
        for ax in self.panels.values():
            ax.set_visible(ax in shown)
        self.caption_text.set_text(self.caption(name, index))


def importance_explorer(
    imps: Mapping[str, Mapping[str, LayerImportance]]
    | Mapping[str, LayerImportance]
    | Sequence[LayerImportance],
    *,
    texts: Sequence[str] | None = None,
    targets: torch.Tensor | None = None,
    predictions: torch.Tensor | Mapping[str, torch.Tensor] | None = None,
    class_names: Sequence[str] = ("negative", "positive"),
    model: str | None = None,
    method: str | None = None,
    index: int = 0,
) -> FigureExplorer:
    """A widget: pick a model, a method and an example; see the spread and this example.

    Top: the chosen method's scores per layer over all examples, this example in red. Bottom: this
    example's scores under every method of that model (signed shares), in the same layer columns.
    The sentence, its label and the model's prediction head the figure.

    Args:
        imps: ``{model: {method: LayerImportance}}`` (a "model" control is shown when there are
            several), or one model's ``{method: LayerImportance}``, or a list named by ``.method``.
            Every entry covers the same examples and layers.
        texts, targets: per example, shown in the title when given.
        predictions: per example (one tensor, or ``{model: tensor}``), shown in the title.
        model, method, index: the first view.

    Returns:
        a :class:`~course_utils.widgets.FigureExplorer` (display it as a cell's last value).
    """
    import ipywidgets as widgets

    models = _as_models(imps)
    every = [imp for by_method in models.values() for imp in by_method.values()]
    _check_same_layers(every)
    n = every[0].num_examples
    if any(imp.num_examples != n for imp in every):
        raise ValueError(
            f"every method must cover the same examples, got {[imp.num_examples for imp in every]}"
        )
    preds = (
        dict(predictions)
        if isinstance(predictions, Mapping)
        else dict.fromkeys(models, predictions)
    )
    for name, values in [("texts", texts), ("targets", targets)] + [
        (f"predictions[{m!r}]", p) for m, p in preds.items()
    ]:
        if values is not None and len(values) != n:
            raise ValueError(f"{name} has {len(values)} entries, expected one per example ({n})")
    method_names = list(dict.fromkeys(name for by_method in models.values() for name in by_method))
    model = model or next(iter(models))
    if model not in models:
        raise ValueError(f"unknown model {model!r}; choose one of {list(models)}")
    method = method or next(iter(models[model]))
    if method not in method_names:
        raise ValueError(f"unknown method {method!r}; choose one of {method_names}")
    view = ImportanceView(
        models,
        texts=texts,
        targets=targets,
        predictions=preds,
        class_names=class_names,
        model=model,
    )
    controls: dict[str, widgets.Widget] = {}
    if len(models) > 1:
        controls["model"] = widgets.Dropdown(options=list(models), value=model, description="model")
    controls["method"] = widgets.Dropdown(options=method_names, value=method, description="method")
    controls["index"] = widgets.IntSlider(
        value=index, min=0, max=n - 1, description="example", continuous_update=False
    )
    return FigureExplorer(view, controls, figsize=(6.6, 4.4), layout=None)
