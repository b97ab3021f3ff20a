"""Pictures of multi-head attention: a heads grid, one head, and an explorer widget.

They take weights, not models, so they draw anything that yields per-head attention: a
:func:`course_utils.capture.capture_attention` record of ``nn.MultiheadAttention``, or a BERT layer's
``output_attentions`` (``(batch, heads, L, S)`` per layer). Padding is cut off before drawing, so the
picture shows only real tokens, and panels that are compared share one colour scale.

Shapes: ``H`` heads, ``L`` queries, ``S`` keys (``L == S`` for self-attention), ``N`` examples.
Self-attention (queries are the keys) crops padding off rows and columns and labels both with
``tokens``; attention whose queries are another sequence (cross-attention, a decoder's steps joined
over a loop) keeps every row and labels the rows with ``query_tokens`` (default: step numbers).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FixedFormatter

from .plots import heatmap, heatmap_grid, per_example, to_numpy
from .style import LINE_COLORS, WEIGHTS_CMAP, styled
from .widgets import FigureExplorer, View

__all__ = ["HeadView", "crop", "head_explorer", "plot_head", "plot_heads"]

KEY_LABEL = "key (attended to)"
QUERY_LABEL = "query (attending)"


def crop(weights, length: int | None = None, *, query_length: int | None = None) -> np.ndarray:
    """Cut padding off ``(..., L, S)`` weights: keep the first ``length`` keys and queries.

    For self-attention (``L == S``) the queries are cropped with the keys unless ``query_length``
    says otherwise. Trailing padding is assumed (as :func:`~course_utils.masks.padding_mask`).
    """
    w = to_numpy(weights)
    if w.ndim < 2:
        raise ValueError(f"attention weights need at least 2 dims (L, S), got shape {w.shape}")
    n_q, n_k = w.shape[-2:]
    length = n_k if length is None else int(length)
    if not 1 <= length <= n_k:
        raise ValueError(f"length must lie in [1, {n_k}] (the number of keys), got {length}")
    if query_length is None:
        query_length = length if n_q == n_k else n_q
    return w[..., :query_length, :length]


def _labels(labels: Sequence[str] | None, n: int, what: str) -> list[str]:
    if labels is None:
        return [str(i) for i in range(n)]
    labels = [str(t) for t in labels]
    if len(labels) < n:
        raise ValueError(
            f"got {len(labels)} {what} labels for {n} {what}s; pass one label per step"
        )
    return labels[:n]


def _is_self_attention(self_attention: bool | None, query_tokens, n_q: int, n_k: int) -> bool:
    """Whether the queries are the keys: as given, or (``None``) when ``L == S`` and no
    ``query_tokens`` name the rows apart."""
    if self_attention is None:
        return n_q == n_k and query_tokens is None
    if self_attention and n_q != n_k:
        raise ValueError(
            f"self_attention=True needs as many queries as keys, got {n_q} queries and {n_k} "
            "keys; pass self_attention=False for cross-attention"
        )
    return bool(self_attention)


def _key_query_labels(
    tokens, query_tokens, n_q: int, n_k: int, self_attention: bool
) -> tuple[list[str], list[str]]:
    """Key labels, and query labels (the key tokens for self-attention unless given apart)."""
    if query_tokens is None and self_attention:
        query_tokens = tokens
    return _labels(tokens, n_k, "key"), _labels(query_tokens, n_q, "query")


def _cropped_and_labelled(
    w: np.ndarray, length, tokens, query_tokens, self_attention: bool | None
) -> tuple[np.ndarray, dict]:
    """Weights ``(..., L, S)`` without padding, and the heatmap arguments that label their axes."""
    n_q, n_k = w.shape[-2:]
    same = _is_self_attention(self_attention, query_tokens, n_q, n_k)
    w = crop(w, length, query_length=None if same else n_q)
    keys, queries = _key_query_labels(tokens, query_tokens, *w.shape[-2:], same)
    axes = {"x_labels": keys, "y_labels": queries, "xlabel": KEY_LABEL, "ylabel": QUERY_LABEL}
    return w, {**axes, "colorbar_label": "attention weight"}


@styled
def plot_head(
    weights,
    *,
    tokens: Sequence[str] | None = None,
    query_tokens: Sequence[str] | None = None,
    length: int | None = None,
    self_attention: bool | None = None,
    highlight_query: int | None = None,
    title: str | None = None,
    norm: Normalize | None = None,
    colorbar: bool = True,
    ax: Axes | None = None,
) -> Figure:
    """One head's attention ``(L, S)`` as a heatmap, queries as rows, keys as columns.

    Args:
        weights: ``(L, S)`` weights of one head (one example).
        tokens: key labels (at least ``length`` of them); default step numbers.
        query_tokens: query labels (default: ``tokens`` for self-attention, else step numbers).
        length: real length; padded keys (and queries, for self-attention) are cut off.
        self_attention: whether the queries are the keys; default: ``L == S`` and no
            ``query_tokens``. Pass ``False`` for cross-attention that happens to be square.
        highlight_query: outline this query's row.
        norm: colour scale (default: this matrix's range); pass one to compare figures.
    """
    w = to_numpy(weights)
    if w.ndim != 2:
        raise ValueError(
            f"plot_head expects one head's weights (L, S), got shape {w.shape}; "
            "pick an example and a head first, e.g. weights[0, 1]"
        )
    w, labelled = _cropped_and_labelled(w, length, tokens, query_tokens, self_attention)
    n_q, n_k = w.shape
    fig = heatmap(w, ax=ax, title=title, norm=norm, colorbar=colorbar, **labelled)
    if highlight_query is not None:
        if not 0 <= highlight_query < n_q:
            raise ValueError(f"highlight_query must lie in [0, {n_q - 1}], got {highlight_query}")
        axes = ax if ax is not None else fig.axes[0]
        axes.add_patch(
            Rectangle(
                (-0.5, highlight_query - 0.5),
                n_k,
                1,
                fill=False,
                edgecolor=LINE_COLORS[1],
                linewidth=2,
            )
        )
    return fig


@styled
def plot_heads(
    weights,
    *,
    tokens: Sequence[str] | None = None,
    query_tokens: Sequence[str] | None = None,
    length: int | None = None,
    self_attention: bool | None = None,
    row_titles: Sequence[str] | None = None,
    suptitle: str | None = None,
    panel_size: tuple[float, float] = (2.4, 2.2),
    fig: Figure | None = None,
) -> Figure:
    """Every head side by side on one colour scale: ``(H, L, S)``, or a grid ``(rows, H, L, S)``.

    A grid draws one row per layer (BERT: stack the layers' weights for one example), titled
    ``row_titles[r]`` (default ``"layer r"``).

    Args:
        weights: ``(H, L, S)`` for one example (e.g. ``cap["attention"].weights[0]``) or ``(rows, H, L, S)``.
        tokens, query_tokens, length, self_attention: labels, real length and whether the
            queries are the keys, as in :func:`plot_head`.
        fig: draw into this figure (widgets reuse theirs).
    """
    w = to_numpy(weights)
    if w.ndim == 3:
        w = w[None]
        row_titles = row_titles or [""]
    if w.ndim != 4:
        raise ValueError(
            f"plot_heads expects (heads, L, S) or (rows, heads, L, S), got shape {w.shape}; "
            "for a batch pick one example first, e.g. weights[0]"
        )
    n_rows, n_heads = w.shape[:2]
    row_titles = (
        list(row_titles) if row_titles is not None else [f"layer {r}" for r in range(n_rows)]
    )
    if len(row_titles) != n_rows:
        raise ValueError(f"got {len(row_titles)} row_titles for {n_rows} rows")
    w, labelled = _cropped_and_labelled(w, length, tokens, query_tokens, self_attention)
    n_q, n_k = w.shape[-2:]
    titles = [f"{row} head {h}".strip() for row in row_titles for h in range(n_heads)]
    return heatmap_grid(
        list(w.reshape(n_rows * n_heads, n_q, n_k)),  # (rows * H, L, S), one panel each
        ncols=n_heads,
        titles=titles,
        suptitle=suptitle,
        panel_size=panel_size,
        fig=fig,
        **labelled,
    )


class HeadView(View):
    """The head explorer's figure: one head's weights for one example (left, the chosen query's
    row outlined) and that query's weights over the keys (right: bars for the head, a line for
    the head average).

    Plain imshow and bars, no legend, axes placed by hand: :meth:`build` makes them once, so a
    redraw only sets data, limits and texts (well under 100 ms).

    Args:
        weights: ``(N, H, L, S)`` per-head weights.
        lengths: real length (keys) of each example.
        tokens: key labels, one list or one list per example (default step numbers).
        query_tokens: row labels, one list or one list per example (default: ``tokens`` for
            self-attention, else step numbers).
        self_attention: whether the queries are the keys (rows cut with the keys' padding);
            default: ``L == S`` and no ``query_tokens``.
    """

    def __init__(
        self,
        weights,
        lengths: Sequence[int],
        tokens: Sequence[str] | Sequence[Sequence[str]] | None = None,
        *,
        query_tokens: Sequence[str] | Sequence[Sequence[str]] | None = None,
        self_attention: bool | None = None,
    ) -> None:
        self.w = to_numpy(weights)
        if self.w.ndim != 4:
            raise ValueError(f"expected (N, heads, L, S) weights, got shape {self.w.shape}")
        n_examples, _, self.n_q, self.n_k = self.w.shape
        self.lengths = [int(n) for n in lengths]
        if len(self.lengths) != n_examples:
            raise ValueError(f"got {len(self.lengths)} lengths for {n_examples} examples")
        self.self_attention = _is_self_attention(self_attention, query_tokens, self.n_q, self.n_k)
        self.tokens = per_example(tokens, n_examples)
        self.query_tokens = per_example(query_tokens, n_examples, what="query_tokens")
        self.steps = np.arange(max(self.n_q, self.n_k))
        self.parts: dict = {}

    def rows(self, example: int) -> int:
        """How many query rows ``example`` shows (self-attention: its real length)."""
        return min(self.n_q, self.lengths[example]) if self.self_attention else self.n_q

    def build(self, fig: Figure) -> None:
        """Axes, colour bar, empty image and bars: what stays while the controls move."""
        n_q, n_k, steps = self.n_q, self.n_k, self.steps
        left = fig.add_axes((0.08, 0.2, 0.46, 0.68))
        image = left.imshow(
            np.zeros((n_q, n_k)),
            norm=Normalize(vmin=0.0, vmax=1.0),  # one scale for every view: weights lie in [0, 1]
            cmap=WEIGHTS_CMAP,
            aspect="auto",
            interpolation="nearest",
        )
        left.set_xticks(steps[:n_k])
        left.set_yticks(steps[:n_q])
        left.tick_params(axis="x", labelrotation=90 if n_k > 8 else 0)
        left.set_xlabel(KEY_LABEL)
        left.set_ylabel(QUERY_LABEL)
        outline = Rectangle((-0.5, -0.5), n_k, 1, fill=False, edgecolor=LINE_COLORS[1], linewidth=2)
        left.add_patch(outline)
        # one colour bar (every view uses 0..1); an inset, so fig.axes stays (heatmap, bars)
        cax = left.inset_axes((1.03, 0.0, 0.026, 1.0))
        fig.colorbar(image, cax=cax, ticks=(0, 0.5, 1))
        cax.tick_params(labelsize=7, length=2)
        right = fig.add_axes((0.68, 0.2, 0.30, 0.68))
        bars = right.bar(steps[:n_k], np.zeros(n_k), color=LINE_COLORS[0]).patches
        (mean,) = right.plot([], [], color=LINE_COLORS[1], marker="o", markersize=3)
        right.set_ylim(0, 1.02)
        right.set_yticks((0, 0.5, 1))
        right.set_xticks([])  # bars stand under the heatmap's columns: same keys, same order
        right.set_ylabel("weight")
        # The bar panel's tick labels never change: fixed label places skip their placement. The
        # heatmap's labels stay placed by matplotlib, below tokens of any width.
        right.xaxis.set_label_coords(0.5, -0.06)
        right.yaxis.set_label_coords(-0.13, 0.5)
        self.parts = dict(
            left=left, image=image, outline=outline, right=right, bars=bars, mean=mean
        )

    def update(self, fig: Figure, *, example: int, head: int, query: int) -> None:
        """Show one example and head, and one query's row (clamped to the example's length)."""
        parts, n_q, n_k = self.parts, self.n_q, self.n_k
        # (H, L', S'): self-attention loses padded rows too, other attention keeps every query
        one = crop(self.w[example], self.lengths[example], query_length=self.rows(example))
        n_rows, n_cols = one.shape[1:]
        query = min(query, n_rows - 1)
        keys, queries = _key_query_labels(
            None if self.tokens is None else self.tokens[example],
            None if self.query_tokens is None else self.query_tokens[example],
            n_rows,
            n_cols,
            self.self_attention,
        )
        left, right = parts["left"], parts["right"]
        parts["image"].set_data(one[head])
        parts["image"].set_extent((-0.5, n_cols - 0.5, n_rows - 0.5, -0.5))
        left.set_xlim(-0.5, n_cols - 0.5)  # ticks past the real length fall outside the view
        left.set_ylim(n_rows - 0.5, -0.5)
        left.xaxis.set_major_formatter(FixedFormatter(keys + [""] * (n_k - n_cols)))
        left.yaxis.set_major_formatter(FixedFormatter(queries + [""] * (n_q - n_rows)))
        # A given title height (y=) skips matplotlib's title placement, a costly part of a redraw.
        left.set_title(f"example {example}, head {head} (colour: weight)", y=1.01)
        parts["outline"].set_y(query - 0.5)
        parts["outline"].set_width(n_cols)
        for k, bar in enumerate(parts["bars"]):  # bars past the real length are hidden
            bar.set_height(one[head, query, k] if k < n_cols else 0.0)
            bar.set_visible(k < n_cols)
        parts["mean"].set_data(self.steps[:n_cols], one[:, query].mean(axis=0))
        right.set_xlim(-0.5, n_cols - 0.5)
        right.set_xlabel(f"keys (as left); bars: head {head}, line: mean")
        right.set_title(f"query {query} ({queries[query]})", y=1.01)


def head_explorer(
    weights,
    *,
    tokens: Sequence[str] | Sequence[Sequence[str]] | None = None,
    query_tokens: Sequence[str] | Sequence[Sequence[str]] | None = None,
    lengths: Sequence[int] | None = None,
    key_padding_mask=None,
    self_attention: bool | None = None,
    title: str | None = "Attention per head: pick an example, a head and a query",
    figsize: tuple[float, float] = (8.0, 3.4),
) -> FigureExplorer:
    """A widget to browse per-head attention: example, head and query position.

    Left: the chosen head's weights for the chosen example (padding cut off), with the chosen query's
    row outlined. Right: that query's weights over the keys for the chosen head (bars) and for the
    head average that ``nn.MultiheadAttention`` returns by default (line).

    Args:
        weights: ``(N, H, L, S)`` per-head weights, e.g. ``cap["attention"]`` or one BERT layer.
        tokens: key labels (columns), one list or one list per example (default step numbers).
        query_tokens: query labels (rows), one list or one list per example; default: ``tokens``
            for self-attention, else step numbers (a decoder's steps).
        lengths: real length of each example; or give ``key_padding_mask (N, S)`` (True at padding).
        self_attention: whether the queries are the keys; default: ``L == S`` and no
            ``query_tokens``. When not, every query row is kept and can be picked (padding cuts
            only the keys): pass ``False`` for cross-attention and a decoder's joined steps.

    Returns:
        A :class:`course_utils.widgets.FigureExplorer` (its first view is also a static image).
    """
    import ipywidgets as widgets

    w = to_numpy(weights)
    if w.ndim != 4:
        raise ValueError(f"head_explorer expects (N, heads, L, S) weights, got shape {w.shape}")
    n_examples, n_heads, _, n_k = w.shape
    if lengths is not None and key_padding_mask is not None:
        raise ValueError("give lengths or key_padding_mask, not both")
    if key_padding_mask is not None:
        from .masks import lengths_from_padding_mask

        lengths = lengths_from_padding_mask(key_padding_mask).tolist()
    view = HeadView(
        w,
        [n_k] * n_examples if lengths is None else lengths,
        tokens,
        query_tokens=query_tokens,
        self_attention=self_attention,
    )
    example = widgets.IntSlider(value=0, min=0, max=n_examples - 1, description="example")
    head = widgets.Dropdown(
        options=[(f"head {h}", h) for h in range(n_heads)], value=0, description="head"
    )
    query = widgets.IntSlider(value=0, min=0, max=view.rows(0) - 1, description="query")

    def on_example(change: dict) -> None:  # the query slider follows the example's real length
        query.max = view.rows(change["new"]) - 1

    example.observe(on_example, names="value")
    return FigureExplorer(
        view,
        {"example": example, "head": head, "query": query},
        figsize=figsize,
        title=title,
        layout="none",
    )
