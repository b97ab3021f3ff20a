"""Plots of layer-wise [CLS] importance: per layer with its spread, per example, methods compared.

Data in, ``Figure`` out: each function takes :class:`~course_utils.importance.LayerImportance`
objects (computed once), accepts ``ax=`` or ``fig=`` and returns the figure. The explorer widget
(:func:`importance_explorer`) redraws one reused figure when the method or the example changes.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .importance import LayerImportance
from .plots import heatmap, to_numpy
from .style import LINE_COLORS, new_figure, styled

if TYPE_CHECKING:  # pragma: no cover - ipywidgets loads only when a widget is built
    from .widgets import FigureExplorer

__all__ = [
    "signed_shares",
    "plot_layer_importance",
    "plot_example_importance",
    "plot_method_comparison",
    "plot_accuracy_comparison",
    "importance_explorer",
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
        _check_index(imp, highlight)
        ax.plot(
            x,
            scores[highlight],
            "-o",
            color=LINE_COLORS[1],
            markersize=3.5,
            linewidth=1.2,
            zorder=5,
            label=f"example {highlight}",
        )
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

    Left: the chosen method's scores per layer over all examples, this example in red. Right: this
    example's scores under every method of that model (signed shares). The sentence, its label and
    the model's prediction head the figure.

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

    from .widgets import FigureExplorer

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

    def caption(name: str, i: int) -> str:
        parts = [f"example {i}"]
        if targets is not None:
            parts.append(f"label: {class_names[int(targets[i])]}")
        if preds.get(name) is not None:
            parts.append(f"{name} predicts: {class_names[int(preds[name][i])]}")
        head = ", ".join(parts)
        if texts is None:
            return head
        return head + "\n" + textwrap.shorten(f'"{texts[i]}"', width=110, placeholder=' ..."')

    def draw(fig: Figure, index: int, method: str, **values) -> None:
        # Fixed axes and a fixed legend place (layout=None, no loc="best"): redraws stay fast.
        name = values.get("model", model)
        by_method = models[name]
        left = fig.add_axes((0.07, 0.16, 0.36, 0.60))
        right = fig.add_axes((0.52, 0.16, 0.30, 0.60))
        if method in by_method:
            imp = by_method[method]
            title = f"{method}: all examples" + (" (red: this one)" if imp.per_example else "")
            plot_layer_importance(
                imp, ax=left, highlight=index if imp.per_example else None, legend=False, title=""
            )
            _panel_title(left, title)
        else:
            left.set_axis_off()
            left.text(
                0.5,
                0.5,
                f"{name!r} has no {method!r}\n(available: {', '.join(by_method)})",
                ha="center",
                va="center",
                transform=left.transAxes,
            )
        plot_example_importance(list(by_method.values()), index, ax=right, legend=False, title="")
        _panel_title(right, "this example, every method")
        right.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=7)
        for ax in (left, right):  # fewer tick labels: text is most of a redraw's cost
            ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
        fig.text(0.5, 0.97, caption(name, index), ha="center", va="top", fontsize=9)

    controls: dict[str, widgets.Widget] = {}
    if len(models) > 1:
        controls["model"] = widgets.Dropdown(options=list(models), value=model, description="model")
    controls["method"] = widgets.Dropdown(options=method_names, value=method, description="method")
    controls["index"] = widgets.IntSlider(
        value=index, min=0, max=n - 1, description="example", continuous_update=False
    )
    return FigureExplorer(draw, controls, figsize=(9.0, 3.6), layout=None)
