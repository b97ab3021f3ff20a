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
from .style import LINE_COLORS, new_figure, styled

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
def plot_head(
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
    y = np.arange(t)
    rows = range(t) if token is None else [token]
    segments, colours = [], []
    colour = to_rgb(LINE_COLORS[0])
    for q in rows:
        for k in range(t):
            w = float(norm(matrix[q, k]))
            if w > 0.02:
                segments.append([(0.0, y[q]), (1.0, y[k])])
                colours.append((*colour, min(1.0, w)))
    ax.add_collection(
        LineCollection(segments, colors=colours, linewidths=[0.5 + 2.5 * c[3] for c in colours])
    )
    for q in y:
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


def bert_attention_explorer(
    encoder: Encoder, texts: Sequence[str], *, skip_special: bool = False, max_length: int = 48
):
    """A widget: pick a sentence (or type your own), a layer and a head; see its heatmap or lines.

    Each sentence is encoded once (with attentions) on first view. Returns a
    :class:`~course_utils.widgets.FigureExplorer`; make it the last expression of a cell.
    """
    import ipywidgets as widgets

    from .encoders import encode
    from .widgets import FigureExplorer

    texts = list(texts)
    if not texts:
        raise ValueError("give at least one sentence to explore")
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

    def draw(
        fig: Figure, sentence: int, own: str, layer: int, head: int, view: str, hide_special: bool
    ) -> None:
        text = own.strip() or texts[sentence]
        encoded = encode(encoder, [text], attentions=True, progress=False, max_length=max_length)
        h = None if head == 0 else head - 1
        if view == "heatmap":  # axes placed by hand: layout=None redraws fastest
            ax = fig.add_axes((0.24, 0.3, 0.6, 0.6))
            cax = fig.add_axes((0.86, 0.3, 0.02, 0.6))
            plot_head(
                encoded,
                0,
                layer - 1,
                h,
                skip_special=hide_special,
                ax=ax,
                colorbar=False,
                text_labels=True,
            )
            fig.colorbar(ax.images[0], cax=cax, label="attention weight", ticks=[0, 0.5, 1])
        else:
            ax = fig.add_axes((0.05, 0.02, 0.9, 0.9))
            plot_token_lines(encoded, 0, layer - 1, h, skip_special=hide_special, ax=ax)

    return FigureExplorer(
        draw,
        controls,
        figsize=(5.6, 4.4),
        layout=None,
        title="BERT self-attention: one layer, one head",
    )
