"""Views of BERT self-attention: one head with its tokens, the layers x heads grid, token-to-token lines.

All views take an :class:`~course_utils.encoders.Encoded` made with ``encode(..., attentions=True)``
(data, not a model), remove the padding, can hide [CLS] and [SEP], and draw on one colour scale. The
explorer widget encodes any sentence the learner types, live (each text once, thanks to the cache).

Shapes: ``L`` layers, ``heads`` heads per layer, ``t`` real tokens of one sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize, to_rgb
from matplotlib.figure import Figure

from .plots import heatmap, shared_norm, to_numpy
from .style import LINE_COLORS, WEIGHTS_CMAP, new_figure, styled

if TYPE_CHECKING:  # pragma: no cover
    from .encoders import Encoded, Encoder

#: Attention weights are probabilities: every view uses this one scale unless told otherwise.
WEIGHT_NORM = Normalize(vmin=0.0, vmax=1.0)


def _check(encoded: Encoded, i: int, layer: int | None = None, head: int | None = None) -> None:
    if encoded.attentions is None:
        raise ValueError("these features hold no attention weights; encode with attentions=True")
    n, n_layers, n_heads = encoded.attentions.shape[:3]
    if not -n <= i < n:
        raise IndexError(f"sentence index {i} out of range for {n} sentences")
    if layer is not None and not 0 <= layer < n_layers:
        raise IndexError(f"layer must be in 0..{n_layers - 1} (0 = first layer), got {layer}")
    if head is not None and not 0 <= head < n_heads:
        raise IndexError(f"head must be in 0..{n_heads - 1}, got {head}")


def attention_weights(
    encoded: Encoded, i: int, *, skip_special: bool = False, renormalize: bool = False
) -> tuple[np.ndarray, list[str]]:
    """Sentence ``i``'s attention weights with padding removed, and its tokens.

    Args:
        skip_special: drop the rows and columns of [CLS] and [SEP] (many heads park most of their
            weight on them, which hides the rest).
        renormalize: with ``skip_special``, rescale each row to sum to 1 again (else the rows show the
            share that went to ordinary tokens).

    Returns:
        ``(weights (L, heads, t, t), tokens)``; row = the query token (attending), column = the key.
    """
    _check(encoded, i)
    n_real = int(encoded.attention_mask[i].sum())
    weights = to_numpy(encoded.attentions[i, :, :, :n_real, :n_real])  # (L, heads, t, t)
    tokens = encoded.tokens(i)
    if skip_special:
        keep = ~encoded.special_tokens_mask[i, :n_real].numpy()
        weights = weights[:, :, keep][:, :, :, keep]
        tokens = [t for t, k in zip(tokens, keep, strict=True) if k]
        if renormalize:
            weights = weights / np.clip(weights.sum(-1, keepdims=True), 1e-12, None)
    return weights, tokens


def _head_matrix(
    encoded: Encoded, i: int, layer: int, head: int | None, skip_special: bool
) -> tuple[np.ndarray, list[str], str]:
    """One head's ``(t, t)`` weights (or the layer's head mean), its tokens and its name."""
    _check(encoded, i, layer, head)
    weights, tokens = attention_weights(encoded, i, skip_special=skip_special)
    if head is None:
        return weights[layer].mean(0), tokens, "mean of heads"
    return weights[layer, head], tokens, f"head {head + 1}"


@styled
def plot_bert_head(
    encoded: Encoded,
    i: int,
    layer: int,
    head: int | None,
    *,
    skip_special: bool = False,
    ax: Axes | None = None,
    norm: Normalize | None = WEIGHT_NORM,
    colorbar: bool = True,
    text_labels: bool = False,
) -> Figure:
    """Heatmap of one head (or, with ``head=None``, the mean of the layer's heads) with token labels.

    Rows are the tokens that attend (queries), columns the tokens attended to (keys).
    ``text_labels=True`` writes the tokens as plain texts instead of tick labels: the same picture,
    drawn about twice as fast (matplotlib ticks are costly), for widgets.
    """
    matrix, tokens, which = _head_matrix(encoded, i, layer, head, skip_special)
    labels = None if text_labels else tokens
    fig = heatmap(
        matrix,
        ax=ax,
        x_labels=labels,
        y_labels=labels,
        norm=norm,
        xlabel="attended to (key)",
        ylabel="attending (query)",
        title=f"layer {layer + 1}, {which}",
        colorbar=colorbar,
        colorbar_label="attention weight",
        max_labels=60,
    )
    if text_labels:
        ax = ax or fig.axes[0]
        ax.set_xticks([])
        ax.set_yticks([])
        left = ax.get_yaxis_transform()  # x in axes units, y in data units
        below = ax.get_xaxis_transform()
        for k, token in enumerate(tokens):
            ax.text(-0.02, k, token, transform=left, ha="right", va="center", fontsize=8)
            ax.text(
                k, -0.02, token, transform=below, ha="center", va="top", rotation=90, fontsize=8
            )
        pad = 5.0 * max(map(len, tokens)) + 6  # points: clear the longest token
        ax.set_xlabel(ax.get_xlabel(), labelpad=pad)
        ax.set_ylabel(ax.get_ylabel(), labelpad=pad)
    return fig


@styled
def plot_layer_head_grid(
    encoded: Encoded,
    i: int,
    *,
    skip_special: bool = False,
    layers: Sequence[int] | None = None,
    ax: Axes | None = None,
    norm: Normalize | None = None,
) -> Figure:
    """Every head of every layer as one mosaic (rows = layers, columns = heads), one colour scale.

    Each tile is a head's ``(t, t)`` matrix (queries down, keys across); white lines separate the
    tiles. One image instead of 72 axes: it draws in a fraction of the time. The default colour
    scale is the shared range of all tiles (:func:`~course_utils.plots.shared_norm`).
    """
    _check(encoded, i)
    weights, tokens = attention_weights(encoded, i, skip_special=skip_special)
    n_layers, n_heads, t = weights.shape[:3]
    layers = list(range(n_layers)) if layers is None else list(layers)
    for layer in layers:
        _check(encoded, i, layer)
    step = t + 1  # one blank row / column between tiles
    mosaic = np.full((len(layers) * step - 1, n_heads * step - 1), np.nan)
    for r, layer in enumerate(layers):
        for h in range(n_heads):
            mosaic[r * step : r * step + t, h * step : h * step + t] = weights[layer, h]
    if ax is None:
        _, ax = new_figure(figsize=(0.75 * n_heads + 1.6, 0.75 * len(layers) + 1.0))
    norm = norm or shared_norm([weights[layers]])
    fig = heatmap(
        mosaic,
        ax=ax,
        norm=norm,
        colorbar_label="attention weight",
        xlabel="head (keys across each tile)",
        ylabel="layer (queries down each tile)",
        title=f"{encoded.texts[i]!r}: every head of every layer",
    )
    centre = (t - 1) / 2
    ax.set_xticks([h * step + centre for h in range(n_heads)], [str(h + 1) for h in range(n_heads)])
    ax.set_yticks([r * step + centre for r in range(len(layers))], [str(x + 1) for x in layers])
    ax.tick_params(length=0)
    return fig


def _line_segments(
    matrix: np.ndarray, norm: Normalize, rows: Sequence[int] | None = None
) -> tuple[list, list, list]:
    """Segments, RGBA colours and widths of the token-to-token lines of a ``(t, t)`` matrix.

    A line from query ``q`` (x = 0) to key ``k`` (x = 1) for every weight above 2 % of the scale;
    opacity and width grow with the weight. ``rows`` keeps the lines of those queries only.
    """
    t = matrix.shape[0]
    colour = to_rgb(LINE_COLORS[0])
    shade = np.clip(norm(matrix), 0.0, 1.0)  # (t, t) in [0, 1]
    segments, colours, widths = [], [], []
    for q in range(t) if rows is None else rows:
        for k in np.flatnonzero(shade[q] > 0.02):
            w = float(shade[q, k])
            segments.append([(0.0, q), (1.0, int(k))])
            colours.append((*colour, w))
            widths.append(0.5 + 2.5 * w)
    return segments, colours, widths


@styled
def plot_token_lines(
    encoded: Encoded,
    i: int,
    layer: int,
    head: int | None,
    *,
    skip_special: bool = False,
    token: int | None = None,
    ax: Axes | None = None,
    norm: Normalize | None = WEIGHT_NORM,
) -> Figure:
    """Token-to-token view: a line from each attending token (left) to each attended token (right).

    A line's opacity and width grow with the weight. ``token`` (an index into the shown tokens)
    keeps the lines of that one query token.
    """
    matrix, tokens, which = _head_matrix(encoded, i, layer, head, skip_special)
    t = len(tokens)
    if token is not None and not 0 <= token < t:
        raise IndexError(f"token must be in 0..{t - 1}, got {token}")
    if ax is None:
        _, ax = new_figure(figsize=(3.2, max(2.0, 0.22 * t + 0.8)))
    norm = norm or Normalize(0.0, float(matrix.max()) or 1.0)
    segments, colours, widths = _line_segments(matrix, norm, None if token is None else [token])
    ax.add_collection(LineCollection(segments, colors=colours, linewidths=widths))
    for q in range(t):
        bold = token is not None and q == token
        ax.text(
            -0.04,
            q,
            tokens[q],
            ha="right",
            va="center",
            fontsize=8,
            fontweight="bold" if bold else "normal",
        )
        ax.text(1.04, q, tokens[q], ha="left", va="center", fontsize=8)
    ax.set_xlim(-0.5, 1.5)
    ax.set_ylim(t - 0.5, -0.5)
    ax.set_axis_off()
    ax.set_title(f"layer {layer + 1}, {which}: query -> key")
    return ax.figure


class _ExplorerCanvas:
    """The explorer's figure, built once and then updated in place (a redraw only renders it).

    Both views live on the figure; the one not shown is hidden. Tokens are plain texts from a pool
    of ``max_tokens`` per side (hidden when unused), not tick labels: matplotlib ticks are costly.
    Axes are placed by hand (no layout engine) and the colour bar is built once.
    """

    def __init__(self, fig: Figure, max_tokens: int) -> None:
        hidden = {"fontsize": 8, "parse_math": False, "visible": False}
        self.heat = fig.add_axes((0.24, 0.3, 0.6, 0.6))
        self.image = self.heat.imshow(
            np.zeros((1, 1)),
            norm=WEIGHT_NORM,
            cmap=WEIGHTS_CMAP,
            aspect="auto",
            interpolation="nearest",
        )
        self.heat.set_xticks([])
        self.heat.set_yticks([])
        self.heat.set_xlabel("attended to (key)")
        self.heat.set_ylabel("attending (query)")
        self.cax = fig.add_axes((0.86, 0.3, 0.02, 0.6))
        fig.colorbar(self.image, cax=self.cax, label="attention weight", ticks=[0, 0.5, 1])
        left = self.heat.get_yaxis_transform()  # x in axes units, y in data units
        below = self.heat.get_xaxis_transform()
        self.rows = [
            self.heat.text(-0.02, k, "", transform=left, ha="right", va="center", **hidden)
            for k in range(max_tokens)
        ]
        self.cols = [
            self.heat.text(k, -0.02, "", transform=below, ha="center", va="top", **hidden)
            for k in range(max_tokens)
        ]
        for text in self.cols:
            text.set_rotation(90)
        self.flow = fig.add_axes((0.05, 0.02, 0.9, 0.9))
        self.flow.set_axis_off()
        self.flow.set_xlim(-0.5, 1.5)
        self.lines = LineCollection([])
        self.flow.add_collection(self.lines)
        self.queries = [
            self.flow.text(-0.04, k, "", ha="right", va="center", **hidden)
            for k in range(max_tokens)
        ]
        self.keys = [
            self.flow.text(1.04, k, "", ha="left", va="center", **hidden) for k in range(max_tokens)
        ]

    @staticmethod
    def _label(pool: list, tokens: list[str]) -> float:
        """Write ``tokens`` into the first texts of ``pool``, hide the rest; return the font size."""
        size = min(8.0, max(4.0, 160.0 / len(tokens)))  # points: long sentences get smaller text
        for k, text in enumerate(pool):
            shown = k < len(tokens)
            if shown:
                text.set_text(tokens[k])
                text.set_fontsize(size)
            text.set_visible(shown)
        return size

    def show(self, matrix: np.ndarray, tokens: list[str], title: str, view: str) -> None:
        """Show one head's ``(t, t)`` matrix with its tokens as a heatmap or as lines."""
        t = len(tokens)
        heat = view == "heatmap"
        for ax in (self.heat, self.cax):
            ax.set_visible(heat)
        self.flow.set_visible(not heat)
        if heat:
            self.image.set_data(matrix)
            self.image.set_extent((-0.5, t - 0.5, t - 0.5, -0.5))
            self.heat.set_xlim(-0.5, t - 0.5)
            self.heat.set_ylim(t - 0.5, -0.5)
            self._label(self.rows, tokens)
            size = self._label(self.cols, tokens)
            pad = 0.62 * size * max(map(len, tokens)) + 6  # points: clear the longest token
            self.heat.xaxis.labelpad = self.heat.yaxis.labelpad = pad
            self.heat.set_title(title)
        else:
            segments, colours, widths = _line_segments(matrix, WEIGHT_NORM)
            self.lines.set_segments(segments)
            self.lines.set_color(colours)
            self.lines.set_linewidth(widths)
            self.flow.set_ylim(t - 0.5, -0.5)
            self._label(self.queries, tokens)
            self._label(self.keys, tokens)
            self.flow.set_title(f"{title}: query -> key")


def bert_attention_explorer(
    encoder: Encoder, texts: Sequence[str], *, skip_special: bool = False, max_length: int = 48
):
    """A widget: pick a sentence (or type your own), a layer and a head; see its heatmap or lines.

    The listed sentences are encoded (with attentions) when the widget is built, a typed one when it
    is entered (each text once, thanks to the cache). The figure is built on the first view and then
    updated in place. Returns a :class:`~course_utils.widgets.FigureExplorer`; make it the last
    expression of a cell.
    """
    import ipywidgets as widgets

    from .encoders import encode
    from .widgets import FigureExplorer

    texts = list(texts)
    if not texts:
        raise ValueError("give at least one sentence to explore")
    encode(encoder, texts, attentions=True, progress=False, max_length=max_length)  # one batch
    controls = {
        "sentence": widgets.Dropdown(
            options=[(t, k) for k, t in enumerate(texts)],
            value=0,
            description="sentence",
            layout=widgets.Layout(width="420px"),
        ),
        "own": widgets.Text(
            value="",
            placeholder="or type a sentence and press Enter",
            description="your text",
            continuous_update=False,
        ),
        "layer": widgets.IntSlider(value=1, min=1, max=encoder.num_layers, description="layer"),
        "head": widgets.Dropdown(
            options=[("mean", 0)] + [(str(h), h) for h in range(1, encoder.num_heads + 1)],
            value=1,
            description="head",
            layout=widgets.Layout(width="150px"),
        ),
        "view": widgets.ToggleButtons(
            options=["heatmap", "lines"], value="heatmap", description="view"
        ),
        "hide_special": widgets.Checkbox(value=skip_special, description="hide [CLS]/[SEP]"),
    }
    canvas: list[_ExplorerCanvas] = []  # the figure's artists, made on the first draw

    def draw(
        fig: Figure,
        sentence: int | None,
        own: str,
        layer: int,
        head: int,
        view: str,
        hide_special: bool,
    ) -> None:
        # the typed text while the menu names none; a picked sentence clears the typed one
        text = own.strip() if own.strip() or sentence is None else texts[sentence]
        encoded = encode(encoder, [text], attentions=True, progress=False, max_length=max_length)
        matrix, tokens, which = _head_matrix(
            encoded, 0, layer - 1, None if head == 0 else head - 1, hide_special
        )
        if not fig.axes:  # first draw, or the one after a failed draw (the figure was cleared)
            canvas[:] = [_ExplorerCanvas(fig, max_length)]
        title = f"layer {layer}, {which}"
        if view == "lines" and hide_special:  # their lines are gone, the rest keeps its width
            title += "\n[CLS]/[SEP] hidden; the other lines are not rescaled"
        canvas[0].show(matrix, tokens, title, view)

    explorer = FigureExplorer(
        draw,
        controls,
        figsize=(5.6, 4.4),
        layout=None,
        clear=False,
        title="BERT self-attention: one layer, one head",
    )
    menu, typed = controls["sentence"], controls["own"]

    def on_menu(change: dict) -> None:  # a picked sentence is drawn, whatever was typed before
        if change["new"] is not None and typed.value:
            with explorer.hold():
                typed.value = ""

    def on_typed(change: dict) -> None:  # the menu names no sentence while a typed one is drawn
        if change["new"].strip() and menu.index is not None:
            with explorer.hold():
                menu.index = None

    menu.observe(on_menu, names="value")
    typed.observe(on_typed, names="value")
    return explorer
