"""Views of transformer attention: one head with its tokens, the layers x heads grid, token lines.

The plots take an :class:`~course_utils.encoders.Encoded` made with ``encode(..., attentions=True)``
(data, not a model), remove the padding, can hide [CLS] and [SEP], and draw on one colour scale.
Both explorers draw on one canvas, :class:`AttentionView`: :func:`bert_attention_explorer` encodes
any sentence the learner types, live (each text once, thanks to the cache);
:func:`transformer_explorer` shows any record of
:func:`~course_utils.transformer_attention.capture_transformer_attention` (encoder, causal decoder,
cross-attention). Their layers and heads count from 0, with the heads' mean as its own menu entry.

Shapes: ``L`` layers, ``heads`` heads per layer, ``t`` real tokens of one sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import ipywidgets as widgets
import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize, to_rgb
from matplotlib.figure import Figure

from .plots import heatmap, per_example, shared_norm, to_numpy, window_bounds
from .style import LINE_COLORS, WEIGHTS_CMAP, new_figure, styled
from .widgets import FigureExplorer, View, index_control

if TYPE_CHECKING:  # pragma: no cover
    from .encoders import Encoded, Encoder
    from .transformer_attention import TransformerAttention

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
    return weights[layer, head], tokens, f"head {head}"


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
        title=f"layer {layer}, {which}",
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
    ax.set_xticks([h * step + centre for h in range(n_heads)], [str(h) for h in range(n_heads)])
    ax.set_yticks([r * step + centre for r in range(len(layers))], [str(x) for x in layers])
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
    ax.set_title(f"layer {layer}, {which}: query -> key")
    return ax.figure


class _Shown(NamedTuple):
    """What the attention view shows for one set of control values."""

    matrix: np.ndarray  # (T_query, T_key) weights
    query_tokens: list[str]  # row labels
    key_tokens: list[str]  # column labels
    title: str
    view: str  # "heatmap" or "lines"
    unseen: np.ndarray | None = None  # causal: (T_query, T_key) True at keys after the query


#: The causal view's title line.
CAUSAL_NOTE = "causal: each token sees itself and earlier ones"


class AttentionView(View):
    """The one canvas of the attention explorers: one head as a heatmap or as token lines.

    Built once (:meth:`build`), then updated in place: ``update`` asks ``select(**values)`` for what
    to show and only sets the data of the artists. Both views live on the figure; the one not shown
    is hidden. Tokens are plain texts from a pool of ``max_tokens`` per side (hidden when unused),
    not tick labels (matplotlib ticks are costly); axes are placed by hand, for a figure without a
    layout engine. Queries and keys may differ in number (cross-attention); in a causal view the
    keys after each query are drawn grey (masked, not a weight of 0).
    """

    def __init__(self, select: Callable[..., _Shown], max_tokens: int) -> None:
        self.select, self.max_tokens = select, max_tokens

    def build(self, fig: Figure) -> None:
        hidden = {"fontsize": 8, "parse_math": False, "visible": False}
        n = self.max_tokens
        self.heat = fig.add_axes((0.24, 0.3, 0.6, 0.6))
        cmap = mpl.colormaps[WEIGHTS_CMAP].with_extremes(bad="#d9d9d9")  # masked: grey
        self.image = self.heat.imshow(
            np.zeros((1, 1)), norm=WEIGHT_NORM, cmap=cmap, aspect="auto", interpolation="nearest"
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
            for k in range(n)
        ]
        self.cols = [
            self.heat.text(k, -0.02, "", transform=below, ha="center", va="top", **hidden)
            for k in range(n)
        ]
        for text in self.cols:
            text.set_rotation(90)
        self.flow = fig.add_axes((0.05, 0.02, 0.9, 0.9))
        self.flow.set_axis_off()
        self.flow.set_xlim(-0.5, 1.5)
        self.lines = LineCollection([])
        self.flow.add_collection(self.lines)
        self.queries = [
            self.flow.text(-0.04, k, "", ha="right", va="center", **hidden) for k in range(n)
        ]
        self.keys = [
            self.flow.text(1.04, k, "", ha="left", va="center", **hidden) for k in range(n)
        ]

    @staticmethod
    def _label(pool: list, tokens: list[str], size: float) -> None:
        """Write ``tokens`` into the first texts of ``pool`` at ``size`` points, hide the rest."""
        for k, text in enumerate(pool):
            shown = k < len(tokens)
            if shown:
                text.set_text(tokens[k])
                text.set_fontsize(size)
            text.set_visible(shown)

    def update(self, fig: Figure, **values: Any) -> None:
        self.show(self.select(**values))

    def show(self, shown: _Shown) -> None:
        """Show one head's ``(T_query, T_key)`` matrix with its tokens as a heatmap or as lines."""
        matrix, rows, cols = shown.matrix, shown.query_tokens, shown.key_tokens
        n_q, n_k = matrix.shape
        if max(n_q, n_k) > self.max_tokens:
            raise ValueError(f"at most {self.max_tokens} tokens per side, got {n_q} x {n_k}")
        size = min(8.0, max(4.0, 160.0 / max(n_q, n_k, 1)))  # points: long texts get smaller
        heat = shown.view == "heatmap"
        causal = shown.unseen is not None
        title = f"{shown.title}\n{CAUSAL_NOTE}" if causal else shown.title
        for ax in (self.heat, self.cax):
            ax.set_visible(heat)
        self.flow.set_visible(not heat)
        if heat:
            if causal:  # keys after the query: never seen (grey), not a weight of 0
                matrix = np.ma.masked_array(matrix, mask=shown.unseen)
            self.image.set_data(matrix)
            self.image.set_extent((-0.5, n_k - 0.5, n_q - 0.5, -0.5))
            self.heat.set_xlim(-0.5, n_k - 0.5)
            self.heat.set_ylim(n_q - 0.5, -0.5)
            self._label(self.rows, rows, size)
            self._label(self.cols, cols, size)
            self.heat.yaxis.labelpad = 0.62 * size * max(map(len, rows), default=1) + 6
            self.heat.xaxis.labelpad = 0.62 * size * max(map(len, cols), default=1) + 6
            self.heat.set_title(title)
        else:
            segments, colours, widths = _line_segments(np.asarray(matrix), WEIGHT_NORM)
            self.lines.set_segments(segments)
            self.lines.set_color(colours)
            self.lines.set_linewidth(widths)
            self.flow.set_ylim(max(n_q, n_k) - 0.5, -0.5)
            self._label(self.queries, rows, size)
            self._label(self.keys, cols, size)
            self.flow.set_title(f"{title}: query -> key" if not causal else title)


def _head_controls(n_layers: int, n_heads: int) -> dict[str, Any]:
    """Layer (0-based), head (0-based, "mean" apart) and view controls of an attention explorer."""
    return {
        "layer": index_control("layer", n_layers),
        "head": widgets.Dropdown(
            options=[("mean", "mean")] + [(str(h), h) for h in range(n_heads)],
            value=0,
            description="head",
            layout=widgets.Layout(width="150px"),
        ),
        "view": widgets.ToggleButtons(
            options=["heatmap", "lines"], value="heatmap", description="view"
        ),
    }


def _which(layer: int, head: int | str) -> str:
    return f"layer {layer}, " + ("mean of heads" if head == "mean" else f"head {head}")


def bert_attention_explorer(
    encoder: Encoder, texts: Sequence[str], *, skip_special: bool = False, max_length: int = 48
) -> FigureExplorer:
    """A widget: pick a sentence (or type your own), a layer and a head; see its heatmap or lines.

    Layers and heads count from 0; the head menu's "mean" is the mean of the layer's heads. The
    listed sentences are encoded (with attentions) when the widget is built, a typed one when it is
    entered (each text once, thanks to the cache). Returns a
    :class:`~course_utils.widgets.FigureExplorer`; make it the last expression of a cell.
    """
    from .encoders import encode

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
        **_head_controls(encoder.num_layers, encoder.num_heads),
        "hide_special": widgets.Checkbox(value=skip_special, description="hide [CLS]/[SEP]"),
    }

    def select(
        sentence: int | None, own: str, layer: int, head: int | str, view: str, hide_special: bool
    ) -> _Shown:
        # the typed text while the menu names none; a picked sentence clears the typed one
        text = own.strip() if own.strip() or sentence is None else texts[sentence]
        encoded = encode(encoder, [text], attentions=True, progress=False, max_length=max_length)
        matrix, tokens, _ = _head_matrix(
            encoded, 0, layer, None if head == "mean" else head, hide_special
        )
        title = _which(layer, head)
        if view == "lines" and hide_special:  # their lines are gone, the rest keeps its width
            title += "\n[CLS]/[SEP] hidden; the other lines are not rescaled"
        return _Shown(matrix, tokens, tokens, title, view)

    explorer = FigureExplorer(
        AttentionView(select, max_length),
        controls,
        figsize=(5.6, 4.4),
        layout=None,
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


def _without(positions: np.ndarray, labels: list[str], drop: set[str]) -> np.ndarray:
    """``positions`` whose label is not in ``drop`` (all of them if that leaves none)."""
    kept = positions[[labels[p] not in drop for p in positions]]
    return kept if len(kept) else positions


def transformer_explorer(
    record: TransformerAttention,
    *,
    tokens: Sequence[str] | Sequence[Sequence[str]] | None = None,
    query_tokens: Sequence[str] | Sequence[Sequence[str]] | None = None,
    example: int = 0,
    max_steps: int = 64,
    window_start: int = 0,
    special_tokens: Collection[str] = (),
) -> FigureExplorer:
    """A widget over one recorded transformer attention: example, layer, head, heatmap or lines.

    Works for every record of
    :func:`~course_utils.transformer_attention.capture_transformer_attention`: self-attention of an
    encoder, causal self-attention of a decoder (the keys after each query are drawn grey, and the
    title says so) and cross-attention (rows: the decoder's ``query_tokens``, columns: the
    encoder's ``tokens``). Padding keys (and, in self-attention, padding queries) are dropped.
    Layers, heads and examples count from 0; the head menu's "mean" is the mean of the heads.

    Args:
        record: a :class:`~course_utils.transformer_attention.TransformerAttention`.
        tokens: labels of the keys (columns): one list, or one list per example; default positions.
        query_tokens: labels of the queries (rows); default ``tokens`` when queries and keys are
            one sequence (self-attention), else positions.
        example: the example shown first.
        max_steps: positions shown at most per side; ``window_start`` picks the first one.
        special_tokens: labels such as ``"[CLS]"``, ``"[SEP]"`` (a tokenizer's
            ``all_special_tokens``): adds a "hide [CLS]/[SEP]" switch that drops their rows and
            columns (the other weights are not rescaled).

    Example:
        >>> import torch
        >>> from course_utils.transformer_attention import TransformerAttention
        >>> w = torch.softmax(torch.randn(1, 2, 2, 3, 3), -1)
        >>> rec = TransformerAttention("", 0, "self", False, w, None, "BERT-style encoder")
        >>> transformer_explorer(rec, tokens=["a", "b", "c"]).controls["head"].value
        0
    """
    n, n_layers, n_heads, n_q, n_k = record.weights.shape
    if not 0 <= example < n:
        raise ValueError(f"example must be in 0..{n - 1}, got {example}")
    if max_steps < 2:
        raise ValueError(f"max_steps must be at least 2, got {max_steps}")
    # self-attention: query q is the key at position q + shift (a decoder's cache holds the earlier)
    same = record.kind != "cross" and n_q <= n_k
    shift = n_k - n_q if same else 0
    keys = per_example(tokens, n, n_k)
    if query_tokens is None and same and keys is not None:
        queries = [row[shift:n_k] for row in keys]
    else:
        queries = per_example(query_tokens, n, n_q, what="query_tokens")
    keys = keys or [[str(k) for k in range(n_k)]] * n
    queries = queries or [[str(q + shift) for q in range(n_q)]] * n
    weights = record.weights.detach().float().cpu().numpy()  # (N, L, heads, Tq, Tk), once
    padding = (
        np.zeros((n, n_k), dtype=bool)
        if record.key_padding is None
        else record.key_padding.detach().cpu().numpy()
    )
    k0, k1 = window_bounds(n_k, window_start, max_steps)
    if same:  # the queries inside the keys' window (at least one)
        q0 = min(max(0, k0 - shift), n_q - 1)
        q1 = min(n_q, max(q0 + 1, k1 - shift))
    else:
        q0, q1 = window_bounds(n_q, window_start, max_steps)
    by_example = []  # per example: the kept query rows and key columns
    for i in range(n):
        cols = [k for k in range(k0, k1) if not padding[i, k]] or list(range(k0, k1))
        rows = [q for q in range(q0, q1) if not (same and padding[i, q + shift])] or [q0]
        by_example.append((np.array(rows), np.array(cols)))

    specials = set(special_tokens)

    def select(
        example: int, layer: int, head: int | str, view: str, hide_special: bool = False
    ) -> _Shown:
        rows, cols = by_example[example]
        if hide_special:
            rows = _without(rows, queries[example], specials)
            cols = _without(cols, keys[example], specials)
        layer_w = weights[example, layer]  # (heads, Tq, Tk)
        matrix = layer_w.mean(0) if head == "mean" else layer_w[head]
        unseen = None
        if record.causal and same:  # keys after the query's own position: never seen
            unseen = cols[None, :] > rows[:, None] + shift
        return _Shown(
            matrix[np.ix_(rows, cols)],
            [queries[example][q] for q in rows],
            [keys[example][k] for k in cols],
            _which(layer, head) + (" ([CLS]/[SEP] hidden, others not rescaled)" * hide_special),
            view,
            unseen,
        )

    controls = {
        "example": index_control("example", n, example),
        **_head_controls(n_layers, n_heads),
    }
    if specials & {t for row in keys + queries for t in row}:
        controls["hide_special"] = widgets.Checkbox(value=False, description="hide [CLS]/[SEP]")
    what = {"self": "self-attention", "decoder self": "decoder self-attention"}
    title = f"{record.name or 'the model'} ({record.family}): "
    title += what.get(record.kind, "cross-attention (decoder queries, encoder keys)")
    if (q0, q1, k0, k1) != (0, n_q, 0, n_k):
        title += (
            f"; positions {k0}-{k1 - 1} of {n_k} shown (window_start= picks others), each row "
            "holds only the weight on those keys (not rescaled)"
        )
    return FigureExplorer(
        AttentionView(select, max_steps), controls, figsize=(5.6, 4.4), layout=None, title=title
    )
