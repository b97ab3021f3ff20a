"""Alignment matrices of an encoder-decoder: which source step each decoder step attends to.

An alignment matrix has one row per decoder (target) step and one column per encoder (source) step;
row ``t`` is the attention distribution of decoder step ``t``. Reversing a sequence should give the
anti-diagonal. Data in, ``Figure`` out; the explorer widget steps through the decoder steps.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import ipywidgets as widgets
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.image import FigureImage
from matplotlib.patches import Rectangle

from .plots import heatmap, heatmap_grid, per_example, shared_norm, to_numpy
from .style import DPI, HIDPI_SCALE, LINE_COLORS, figure_to_png, new_figure, styled
from .widgets import FigureExplorer, View

__all__ = [
    "DecoderStepView",
    "decoder_step_explorer",
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
    tokens: Sequence[str] | None = None,
    query_tokens: Sequence[str] | None = None,
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
        tokens: what each source step holds (symbols, values), the columns; ticks read
            ``"step: label"``.
        query_tokens: what each decoder step emits, the rows.
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
        x_labels=_step_labels(tokens, S, "tokens"),
        y_labels=_step_labels(query_tokens, T, "query_tokens"),
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
    tokens: Sequence[str] | None = None,
    query_tokens: Sequence[str] | None = None,
    expected: Sequence[int] | np.ndarray | None = None,
    suptitle: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Several alignments of the same shape side by side, on **one** colour scale (min .. max of all).

    Use it to compare models on the same example; the dashed cells mark ``expected``; ``tokens``
    and ``query_tokens`` label the columns and rows as in :func:`plot_alignment`.
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
        x_labels=_step_labels(tokens, S, "tokens"),
        y_labels=_step_labels(query_tokens, T, "query_tokens"),
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


class DecoderStepView(View):
    """The decoder-step explorer's figure: one example's alignment with the current decoder step
    boxed (left, on a fixed 0..1 scale), and that step's weights as bars over the source steps
    (right: its argmax dark, the expected step outlined).

    Axes placed by hand (no layout engine), built once: an update only sets the image, the box,
    the bars and the title. Drawing text (tick labels, axis labels) is most of a render: with
    ``cache_background`` the static part (axes, ticks, labels) is rendered once into an image that
    later renders paste as one ``FigureImage``, under the artists that change with the step. It is
    rendered again when the tick labels change (another example). The cached pixels are only
    right for renders at ``DPI * HIDPI_SCALE`` (what :class:`~course_utils.widgets.FigureExplorer`
    renders).

    Args:
        attention: ``(B, T, S)`` or ``(T, S)`` weights (padding already cut off).
        tokens / query_tokens: source (column) and target (row) labels: one list for all
            examples or one list per example.
        expected: the source step each decoder step should attend to (outlined).
    """

    main_controls = ("step", "example")  # what a saved HTML file keeps working first

    def __init__(
        self,
        attention,
        *,
        tokens=None,
        query_tokens=None,
        expected: Sequence[int] | np.ndarray | None = None,
        cache_background: bool = False,
    ) -> None:
        self.att = _as_batch(attention)
        B, T, S = self.att.shape
        self.tokens = per_example(tokens, B)
        self.query_tokens = per_example(query_tokens, B, what="query_tokens")
        self.expected = expected
        self.cache_background = cache_background
        self.every = max(1, int(np.ceil(S / 12)))  # at most ~12 source ticks

    def build(self, fig: Figure) -> None:
        """Both axes, the colour bar, the empty image, box and bars."""
        T, S = self.att.shape[1:]
        self.fig = fig
        self.background: FigureImage | None = None
        self.ax_m = fig.add_axes((0.1, 0.2, 0.33, 0.62))
        self.ax_b = fig.add_axes((0.58, 0.2, 0.39, 0.62))
        self.image = self.ax_m.imshow(
            np.zeros((T, S)), aspect="auto", interpolation="nearest", vmin=0.0, vmax=1.0
        )
        # the matrix's 0..1 scale; an inset, so fig.axes stays (matrix, bars)
        self.cax = self.ax_m.inset_axes((1.03, 0.0, 0.03, 1.0))
        fig.colorbar(self.image, cax=self.cax, ticks=(0, 0.5, 1))
        self.cax.tick_params(labelsize=7, length=2)
        self.box = Rectangle((-0.5, -0.5), S, 1, fill=False, lw=2, ec=LINE_COLORS[1])
        self.ax_m.add_patch(self.box)
        ticks = range(0, S, self.every)
        self.ax_m.set_xticks(ticks, [str(i) for i in ticks])
        self.ax_m.set_yticks(range(T))
        self.ax_m.set_xlabel(SOURCE_AXIS)
        self.ax_m.set_ylabel(TARGET_AXIS)
        self.bars = list(self.ax_b.bar(range(S), np.zeros(S), color="#9ecae1"))
        self.expected_bar = Rectangle(
            (-0.4, 0.0), 0.8, 0.0, fill=False, ec=LINE_COLORS[1], lw=1.5, ls="--", visible=False
        )
        self.ax_b.add_patch(self.expected_bar)
        self.ax_b.set_ylim(0, 1.05)
        self.ax_b.set_xticks(ticks)
        self.ax_b.set_xlabel(SOURCE_AXIS)
        self.ax_b.set_ylabel("attention weight")
        self.title = self.ax_b.set_title("", fontsize=9)
        self.shown: int | None = None  # the example whose weights the image holds
        self.labels: tuple | None = None
        self.best = 0

    def update(self, fig: Figure, *, step: int, example: int = 0) -> None:
        """Show decoder step ``step`` of example ``example``."""
        weights = self.att[example]
        T, S = weights.shape
        if not 0 <= step < T:
            raise ValueError(f"step must lie in [0, {T - 1}], got {step}")
        query_tokens = self.query_tokens[example] if self.query_tokens else None
        self._set_labels(
            _step_labels(self.tokens[example] if self.tokens else None, S, "tokens"),
            _step_labels(query_tokens, T, "query_tokens"),
        )
        if self.shown != example:
            self.image.set_data(weights)
            self.shown = example
        self.box.set_y(step - 0.5)
        row = weights[step]
        best = int(row.argmax())
        for j, bar in enumerate(self.bars):
            bar.set_height(row[j])
        self.bars[self.best].set_facecolor("#9ecae1")
        self.bars[best].set_facecolor(LINE_COLORS[0])
        self.best = best
        expected = self.expected
        if expected is not None:  # outlined and named in the title (a legend would cost more)
            j = int(expected[step])
            self.expected_bar.set_x(j - 0.4)
            self.expected_bar.set_height(row[j])
        self.expected_bar.set_visible(expected is not None)
        what = f" emits {query_tokens[step]!s}," if query_tokens is not None else ""
        should = f", expected {int(expected[step])} (dashed)" if expected is not None else ""
        self.title.set_text(
            f"decoder step {step}:{what}\nlooks most at source step {best} ({row[best]:.2f}){should}"
        )

    def _set_labels(self, src: list[str], tgt: list[str]) -> None:
        """Tick labels change only with the example, not with the step: skip them when unchanged."""
        if self.labels == (src, tgt):
            return
        self.labels = (src, tgt)
        S = self.att.shape[2]
        self.ax_m.set_yticklabels(tgt)
        self.ax_b.set_xticklabels(
            [src[i] for i in range(0, S, self.every)], rotation=90 if S > 8 else 0
        )
        if self.cache_background:
            self._render_background()

    def _render_background(self) -> None:
        """Render everything but the changing artists once, then hide the axes' decorations."""
        from PIL import Image

        changing = [self.image, self.box, *self.bars, self.expected_bar, self.title]
        shown = [a.get_visible() for a in changing]
        if self.background is not None:
            self.background.remove()
        self._show_decorations(True)
        for artist in changing:
            artist.set_visible(False)
        png = figure_to_png(self.fig, DPI * HIDPI_SCALE, fast=True)
        for artist, visible in zip(changing, shown, strict=True):
            artist.set_visible(visible)
        pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))  # (H, W, 4)
        self.background = self.fig.figimage(pixels, origin="upper", zorder=-1)
        self._show_decorations(False)

    def _show_decorations(self, visible: bool) -> None:
        self.cax.set_visible(visible)  # static: in the cached background only
        for ax in (self.ax_m, self.ax_b):
            ax.xaxis.set_visible(visible)
            ax.yaxis.set_visible(visible)
            ax.patch.set_visible(visible)


def decoder_step_explorer(
    attention,
    *,
    tokens=None,
    query_tokens=None,
    expected: Sequence[int] | np.ndarray | None = None,
    step: int = 0,
    figsize: tuple[float, float] = (8.5, 3.2),
) -> FigureExplorer:
    """A widget that steps through the decoder steps of one or several examples.

    Args:
        attention: ``(B, T, S)`` or ``(T, S)`` weights (padding already cut off).
        tokens / query_tokens: source and target labels, one list for all examples or one list
            per example.
        expected: the source step each decoder step should attend to (outlined).
        step: the decoder step shown first (the static view).

    Returns the :class:`~course_utils.widgets.FigureExplorer` (make it the last value of a cell).
    """
    view = DecoderStepView(
        attention,
        tokens=tokens,
        query_tokens=query_tokens,
        expected=expected,
        cache_background=True,
    )
    B, T, _ = view.att.shape
    controls: dict[str, widgets.Widget] = {
        "step": widgets.IntSlider(value=step, min=0, max=T - 1, description="decoder step")
    }
    if B > 1:
        controls["example"] = widgets.IntSlider(value=0, min=0, max=B - 1, description="example")
    return FigureExplorer(
        view,
        controls,
        figsize=figsize,
        layout="none",  # axes placed by hand; None would fall back to rcParams (constrained)
        title="Step through the decoder: where does each output step look?",
    )
