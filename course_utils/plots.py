"""Building blocks every course figure uses: labelled heatmaps on one shared colour scale.

Topic plots (state flow, attention, layer importance) are built from these, so "one colour scale across
the panels it compares" and "labels on both axes" are implemented once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure

from .style import SIGNED_CMAP, WEIGHTS_CMAP, new_figure, styled

__all__ = ["heatmap", "heatmap_grid", "per_example", "shared_norm", "to_numpy", "window_bounds"]

ArrayLike = np.ndarray | Sequence[Sequence[float]]


def per_example(
    tokens: Any, n: int, lengths: int | Sequence[int] | None = None, *, what: str = "tokens"
) -> list[list[str]] | None:
    """Position labels as one list per example: how every view reads ``tokens=``.

    ``tokens`` is one list for every example (repeated) or one list per example (``n`` of them);
    with ``lengths`` (one for all, or one per example) each list must have at least that many labels.
    Labels become strings. ``None`` stays ``None`` (the view numbers the positions).
    """
    if tokens is None:
        return None
    tokens = list(tokens)
    if not tokens or isinstance(tokens[0], str | int | float | np.integer | np.floating):
        tokens = [tokens] * n
    if len(tokens) != n:
        raise ValueError(
            f"{what}: one list of labels for every example, or one list per example ({n}); got "
            f"{len(tokens)} lists"
        )
    out = [[str(t) for t in row] for row in tokens]
    if lengths is not None:
        needs = [lengths] * n if isinstance(lengths, int | np.integer) else list(lengths)
        for b, (row, need) in enumerate(zip(out, needs, strict=True)):
            if len(row) < int(need):
                raise ValueError(
                    f"{what}: example {b} has {int(need)} positions but {len(row)} labels; pass "
                    "one label per position"
                )
    return out


def window_bounds(n: int, start: int, size: int) -> tuple[int, int]:
    """``(first, stop)`` of a window of ``size`` positions from ``start``, moved inside ``0 .. n``.

    How every view shows a long input: at most ``size`` positions, the window never past the end.
    """
    if n <= size:
        return 0, n
    start = min(max(0, start), n - size)
    return start, start + size


def to_numpy(values) -> np.ndarray:
    """A float NumPy array from a tensor (detached, on the CPU), an array or nested lists."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=float)


def shared_norm(arrays: Iterable, *, signed: bool = False, vmin=None, vmax=None) -> Normalize:
    """One colour scale for several panels: min and max over all of them.

    ``signed=True`` centres the scale on 0 with equal reach both ways (for states and differences).
    """
    values = [to_numpy(a) for a in arrays]
    values = [v[np.isfinite(v)] for v in values if v.size]
    if not values or not any(v.size for v in values):
        raise ValueError("shared_norm needs at least one non-empty, finite array")
    lo = min(float(v.min()) for v in values if v.size) if vmin is None else vmin
    hi = max(float(v.max()) for v in values if v.size) if vmax is None else vmax
    if signed:
        reach = max(abs(lo), abs(hi), 1e-12)
        return TwoSlopeNorm(vcenter=0.0, vmin=-reach, vmax=reach)
    if hi <= lo:
        hi = lo + 1e-12
    return Normalize(vmin=lo, vmax=hi)


def _tick_labels(
    ax: Axes, axis: str, labels: Sequence[str] | None, n: int, max_labels: int
) -> None:
    if labels is None:
        return
    if len(labels) != n:
        raise ValueError(
            f"{axis}_labels has {len(labels)} entries but the matrix has {n} {axis} cells"
        )
    step = max(1, int(np.ceil(n / max_labels)))
    ticks = np.arange(0, n, step)
    if axis == "x":
        ax.set_xticks(ticks, [str(labels[i]) for i in ticks], rotation=90 if n > 8 else 0)
    else:
        ax.set_yticks(ticks, [str(labels[i]) for i in ticks])


@styled
def heatmap(
    matrix: ArrayLike,
    *,
    ax: Axes | None = None,
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: str | None = None,
    norm: Normalize | None = None,
    signed: bool = False,
    cmap: str | None = None,
    colorbar: bool = True,
    colorbar_label: str | None = None,
    annotate: bool = False,
    max_labels: int = 40,
) -> Figure:
    """Draw a 2-D matrix with labelled rows and columns; return the figure.

    Args:
        matrix: ``(rows, cols)`` values (tensor or array). Remove padding before plotting.
        norm: a shared colour scale from :func:`shared_norm`; default is this matrix's own range.
        signed: values centred on 0 (diverging map) instead of weights (sequential map).
        annotate: write each value in its cell (for small matrices).
    """
    m = to_numpy(matrix)
    if m.ndim != 2:
        raise ValueError(f"heatmap expects a 2-D matrix (rows, cols), got shape {m.shape}")
    if ax is None:
        _, ax = new_figure(
            figsize=(max(2.5, 0.28 * m.shape[1] + 1.8), max(2.0, 0.25 * m.shape[0] + 1.2))
        )
    norm = norm or shared_norm([m], signed=signed)
    image = ax.imshow(
        m,
        aspect="auto",
        interpolation="nearest",
        norm=norm,
        cmap=cmap or (SIGNED_CMAP if signed else WEIGHTS_CMAP),
    )
    _tick_labels(ax, "x", x_labels, m.shape[1], max_labels)
    _tick_labels(ax, "y", y_labels, m.shape[0], max_labels)
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if annotate:
        mid = (norm.vmin + norm.vmax) / 2
        for (i, j), v in np.ndenumerate(m):
            ax.text(
                j,
                i,
                f"{v:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if v < mid else "black",
            )
    if colorbar:
        bar = ax.figure.colorbar(image, ax=ax, shrink=0.9)
        if colorbar_label:
            bar.set_label(colorbar_label)
    return ax.figure


@styled
def heatmap_grid(
    matrices: Sequence[ArrayLike],
    *,
    ncols: int,
    titles: Sequence[str] | None = None,
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    signed: bool = False,
    norm: Normalize | None = None,
    colorbar_label: str | None = None,
    suptitle: str | None = None,
    panel_size: tuple[float, float] = (2.4, 2.2),
    fig: Figure | None = None,
) -> Figure:
    """Several matrices side by side on **one** colour scale with one colour bar; return the figure.

    Tick labels are drawn on the outer panels only. Use it for heads, layers or depths to compare.
    ``norm`` fixes the shared scale (e.g. ``Normalize(0, 1)`` for attention weights); by default it
    spans the min and max over all panels.
    """
    mats = [to_numpy(m) for m in matrices]
    if not mats:
        raise ValueError("heatmap_grid needs at least one matrix")
    if titles is not None and len(titles) != len(mats):
        raise ValueError(f"got {len(titles)} titles for {len(mats)} matrices")
    nrows = int(np.ceil(len(mats) / ncols))
    if fig is None:
        fig, axes = new_figure(
            nrows,
            ncols,
            squeeze=False,
            figsize=(panel_size[0] * ncols + 1.0, panel_size[1] * nrows + 0.5),
        )
    else:
        axes = np.atleast_2d(fig.subplots(nrows, ncols, squeeze=False))
    norm = norm or shared_norm(mats, signed=signed)
    for k, ax in enumerate(axes.flat):
        if k >= len(mats):
            ax.set_axis_off()
            continue
        r, c = divmod(k, ncols)
        heatmap(
            mats[k],
            ax=ax,
            norm=norm,
            signed=signed,
            colorbar=False,
            x_labels=x_labels if r == nrows - 1 or k + ncols >= len(mats) else None,
            y_labels=y_labels if c == 0 else None,
            xlabel=xlabel if r == nrows - 1 else None,
            ylabel=ylabel if c == 0 else None,
            title=titles[k] if titles else None,
        )
        if x_labels is not None and not (r == nrows - 1 or k + ncols >= len(mats)):
            ax.set_xticks([])
        if y_labels is not None and c != 0:
            ax.set_yticks([])
    mappable = axes.flat[0].images[0]
    bar = fig.colorbar(mappable, ax=list(axes.flat), shrink=0.85)
    if colorbar_label:
        bar.set_label(colorbar_label)
    if suptitle:
        fig.suptitle(suptitle)
    return fig
