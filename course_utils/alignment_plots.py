"""Alignment matrices of an encoder-decoder: which source step each decoder step attends to.

An alignment matrix has one row per decoder (target) step and one column per encoder (source) step;
row ``t`` is the attention distribution of decoder step ``t``. Reversing a sequence should give the
anti-diagonal. Data in, ``Figure`` out; the explorer widget steps through the decoder steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as widgets
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .plots import heatmap, heatmap_grid, shared_norm, to_numpy
from .style import LINE_COLORS, new_figure, styled
from .widgets import FigureExplorer

__all__ = [
    "decoder_step_explorer",
    "draw_decoder_step",
    "plot_alignment",
    "plot_alignments",
    "trim_alignment",
]

SOURCE_AXIS = "source step (encoder)"
TARGET_AXIS = "decoder step (output)"


def trim_alignment(
    weights, *, source_length: int | None = None, target_length: int | None = None
) -> np.ndarray:
    """One ``(T, S)`` alignment as an array with padded rows and columns removed."""
    m = to_numpy(weights)
    if m.ndim != 2:
        raise ValueError(
            f"expected one alignment of shape (target_len, source_len), got shape {m.shape}; "
            "pick one example first, e.g. attention[0]"
        )
    for name, length, size in (
        ("target_length", target_length, m.shape[0]),
        ("source_length", source_length, m.shape[1]),
    ):
        if length is not None and not 1 <= length <= size:
            raise ValueError(f"{name} must lie in [1, {size}], got {length}")
    return m[:target_length, :source_length]


def _step_labels(labels: Sequence[str] | None, n: int, what: str) -> list[str]:
    """``"t: label"`` tick labels (step numbers always shown), cut to the ``n`` real steps."""
    if labels is None:
        return [str(i) for i in range(n)]
    if len(labels) < n:
        raise ValueError(f"{what} has {len(labels)} labels for {n} steps")
    return [f"{i}: {labels[i]}" for i in range(n)]


def _mark_expected(ax: Axes, expected: Sequence[int] | np.ndarray, n_rows: int) -> None:
    """Outline the cell each row is expected to attend to (e.g. the anti-diagonal)."""
    for t, j in enumerate(np.asarray(expected)[:n_rows]):
        ax.add_patch(Rectangle((j - 0.5, t - 0.5), 1, 1, fill=False, lw=1.2, ec="white", ls="--"))


@styled
def plot_alignment(
    weights,
    *,
    source_labels: Sequence[str] | None = None,
    target_labels: Sequence[str] | None = None,
    source_length: int | None = None,
    target_length: int | None = None,
    expected: Sequence[int] | np.ndarray | None = None,
    norm: Normalize | None = None,
    title: str | None = None,
    annotate: bool = False,
    ax: Axes | None = None,
) -> Figure:
    """Draw one alignment matrix (decoder steps x source steps) and return the figure.

    Args:
        weights: ``(T, S)`` attention weights of one example (tensor or array).
        source_labels / target_labels: what each step holds (symbols, values); ticks read
            ``"step: label"``.
        source_length / target_length: real lengths; padded rows and columns are cut off.
        expected: for each decoder step, the source step it should attend to; outlined dashed.
        norm: a shared colour scale when several alignments are compared; default ``0 .. max``.
    """
    m = trim_alignment(weights, source_length=source_length, target_length=target_length)
    T, S = m.shape
    if ax is None:
        _, ax = new_figure(figsize=(min(8.0, max(3.0, 0.32 * S + 2.2)), max(2.4, 0.3 * T + 1.4)))
    fig = heatmap(
        m,
        ax=ax,
        norm=norm or shared_norm([m], vmin=0.0),
        x_labels=_step_labels(source_labels, S, "source_labels"),
        y_labels=_step_labels(target_labels, T, "target_labels"),
        xlabel=SOURCE_AXIS,
        ylabel=TARGET_AXIS,
        title=title,
        annotate=annotate,
        colorbar_label="attention weight",
    )
    if expected is not None:
        _mark_expected(ax, expected, T)
    return fig


@styled
def plot_alignments(
    alignments: Sequence,
    *,
    titles: Sequence[str] | None = None,
    source_labels: Sequence[str] | None = None,
    target_labels: Sequence[str] | None = None,
    expected: Sequence[int] | np.ndarray | None = None,
    suptitle: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Several alignments of the same shape side by side, on **one** colour scale (min .. max of all).

    Use it to compare models on the same example; the dashed cells mark ``expected``.
    """
    mats = [trim_alignment(a) for a in alignments]
    if len({m.shape for m in mats}) != 1:
        raise ValueError(
            f"alignments to compare must share one shape, got {[m.shape for m in mats]}"
        )
    T, S = mats[0].shape
    fig = heatmap_grid(
        mats,
        ncols=len(mats),
        titles=titles,
        x_labels=_step_labels(source_labels, S, "source_labels"),
        y_labels=_step_labels(target_labels, T, "target_labels"),
        xlabel=SOURCE_AXIS,
        ylabel=TARGET_AXIS,
        colorbar_label="attention weight",
        suptitle=suptitle,
        panel_size=(max(2.4, 0.3 * S + 0.8), max(2.2, 0.3 * T + 0.8)),
        fig=fig,
    )
    if expected is not None:
        for ax in fig.axes[: len(mats)]:
            _mark_expected(ax, expected, T)
    return fig


def _as_batch(attention) -> np.ndarray:
    a = to_numpy(attention)
    if a.ndim == 2:
        a = a[None]  # (T, S) -> (1, T, S)
    if a.ndim != 3:
        raise ValueError(
            f"expected attention of shape (batch, target_len, source_len), got {a.shape}"
        )
    return a


def _per_example(labels, n: int, what: str) -> list | None:
    """Accept one label list for every example, or one list per example."""
    if labels is None:
        return None
    labels = list(labels)
    if labels and isinstance(labels[0], str | int | float | np.integer | np.floating):
        return [labels] * n
    if len(labels) != n:
        raise ValueError(f"{what}: got labels for {len(labels)} examples, attention has {n}")
    return labels


def draw_decoder_step(
    fig: Figure,
    weights: np.ndarray,
    step: int,
    *,
    source_labels: Sequence[str] | None = None,
    target_labels: Sequence[str] | None = None,
    expected: Sequence[int] | None = None,
) -> Figure:
    """Draw the alignment of one example with decoder ``step`` highlighted, and that step's weights.

    Left: the ``(T, S)`` matrix on a fixed 0..1 scale, the current row boxed. Right: the current
    step's weights as bars over the source steps (its argmax dark, the expected step outlined).
    Axes are placed by hand (no layout engine), so a redraw stays fast.
    """
    T, S = weights.shape
    if not 0 <= step < T:
        raise ValueError(f"step must lie in [0, {T - 1}], got {step}")
    src = _step_labels(source_labels, S, "source_labels")
    ax_m = fig.add_axes((0.1, 0.2, 0.33, 0.62))
    ax_b = fig.add_axes((0.56, 0.2, 0.41, 0.62))
    ax_m.imshow(weights, aspect="auto", interpolation="nearest", vmin=0.0, vmax=1.0)
    ax_m.add_patch(Rectangle((-0.5, step - 0.5), S, 1, fill=False, lw=2, ec=LINE_COLORS[1]))
    every = max(1, int(np.ceil(S / 12)))
    ax_m.set_xticks(range(0, S, every), [str(i) for i in range(0, S, every)])
    ax_m.set_yticks(range(T), _step_labels(target_labels, T, "target_labels"))
    ax_m.set_xlabel(SOURCE_AXIS)
    ax_m.set_ylabel(TARGET_AXIS)
    row = weights[step]
    best = int(row.argmax())
    colors = [LINE_COLORS[0] if j == best else "#9ecae1" for j in range(S)]
    ax_b.bar(range(S), row, color=colors)
    if expected is not None:  # outlined and named in the title (a legend would cost more)
        j = int(expected[step])
        ax_b.bar([j], [row[j]], fill=False, ec=LINE_COLORS[1], lw=1.5, ls="--")
    ax_b.set_ylim(0, 1.05)
    ax_b.set_xticks(
        range(0, S, every), [src[i] for i in range(0, S, every)], rotation=90 if S > 8 else 0
    )
    ax_b.set_xlabel(SOURCE_AXIS)
    ax_b.set_ylabel("attention weight")
    what = f" emits {target_labels[step]!s}," if target_labels is not None else ""
    should = f", expected {int(expected[step])} (dashed)" if expected is not None else ""
    ax_b.set_title(
        f"decoder step {step}:{what}\nlooks most at source step {best} ({row[best]:.2f}){should}",
        fontsize=9,
    )
    return fig


def decoder_step_explorer(
    attention,
    *,
    source_labels=None,
    target_labels=None,
    expected: Sequence[int] | np.ndarray | None = None,
    step: int = 0,
    figsize: tuple[float, float] = (8.5, 3.2),
) -> FigureExplorer:
    """A widget that steps through the decoder steps of one or several examples.

    Args:
        attention: ``(B, T, S)`` or ``(T, S)`` weights (padding already cut off).
        source_labels / target_labels: one list of labels for all examples or one list per example.
        expected: the source step each decoder step should attend to (outlined).
        step: the decoder step shown first (the static view).

    Returns the :class:`~course_utils.widgets.FigureExplorer` (make it the last value of a cell).
    """
    att = _as_batch(attention)
    B, T, _ = att.shape
    src = _per_example(source_labels, B, "source_labels")
    tgt = _per_example(target_labels, B, "target_labels")
    controls: dict[str, widgets.Widget] = {
        "step": widgets.IntSlider(value=step, min=0, max=T - 1, description="decoder step")
    }
    if B > 1:
        controls["example"] = widgets.IntSlider(value=0, min=0, max=B - 1, description="example")

    def draw(fig: Figure, step: int, example: int = 0) -> None:
        draw_decoder_step(
            fig,
            att[example],
            step,
            source_labels=src[example] if src else None,
            target_labels=tgt[example] if tgt else None,
            expected=expected,
        )

    return FigureExplorer(
        draw,
        controls,
        figsize=figsize,
        layout="none",  # axes placed by hand; None would fall back to rcParams (constrained)
        title="Step through the decoder: where does each output step look?",
    )
