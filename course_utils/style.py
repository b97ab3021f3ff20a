"""The course's one plot style, applied per figure (never through global rcParams).

Every figure in the course is made by :func:`new_figure`, so they share fonts, sizes and colour maps,
and every figure shows itself as a PNG when it is the last value of a notebook cell, without
``matplotlib.pyplot`` and its global state.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Sequential map for weights and probabilities (attention, gates): 0 is light, 1 is dark.
WEIGHTS_CMAP = "viridis"
#: Diverging map for signed values centred on 0 (hidden and cell states, differences).
SIGNED_CMAP = "RdBu_r"
#: Qualitative colours for lines (depths, models, heads in a legend).
LINE_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
#: Resolution of figures in notebooks (and of their static PNG views): CSS pixels per inch.
DPI = 90
#: Explorer images are rendered with this many pixels per CSS pixel (sharp on high-DPI screens) and
#: shown at the figure's own size, ``figsize * DPI`` CSS pixels. ``COURSE_HIDPI_SCALE=1`` renders a
#: quarter of the pixels (a little faster on a slow machine, soft text on high-DPI screens).
HIDPI_SCALE = max(1, int(os.environ.get("COURSE_HIDPI_SCALE", "2")))
#: rcParams that keep a figure without a layout engine from getting one back from the style.
NO_AUTO_LAYOUT = {"figure.autolayout": False, "figure.constrained_layout.use": False}

STYLE: dict[str, Any] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "axes.prop_cycle": mpl.cycler(color=list(LINE_COLORS)),
    "image.cmap": WEIGHTS_CMAP,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "figure.constrained_layout.use": True,
}


@contextlib.contextmanager
def course_style() -> Iterator[None]:
    """Apply the course style inside a ``with`` block only (it is restored afterwards)."""
    with mpl.rc_context(STYLE):
        yield


class CourseFigure(Figure):
    """A ``Figure`` that renders itself as PNG in Jupyter with no pyplot involved.

    Figures made with ``Figure()`` are not tracked by pyplot: they are not shown twice, not kept alive
    by a global registry, and they are freed when the last reference goes. Each keeps one Agg
    canvas, so repeated renders (widget redraws) reuse matplotlib's cache of text sizes.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        FigureCanvasAgg(self)

    def _repr_png_(self) -> bytes:
        return figure_to_png(self)


def figure_to_png(fig: Figure, dpi: int = DPI, *, fast: bool = False, small: bool = False) -> bytes:
    """Render ``fig`` to PNG bytes (used for static views and for widget redraws).

    ``fast=True`` (widget redraws) draws the figure's own Agg canvas and encodes its pixels with
    :func:`rgba_to_png`: the same pixels, about 2-3x quicker to encode than matplotlib's savefig
    (PIL), and a file of about the same size. ``small=True`` (a saved HTML view holds a hundred
    frames) stores the pixels in 256 colours (no dithering; on the course's figures a mean error of
    about 1.5/255 per channel, the text as sharp) in an optimized PNG: about a third of the bytes.
    """
    # A figure without a layout engine keeps none: savefig would otherwise re-read the style's
    # rcParams and switch constrained layout on (a second full draw, and warnings).
    no_engine = fig.get_layout_engine() is None
    with mpl.rc_context(NO_AUTO_LAYOUT) if no_engine else contextlib.nullcontext():
        if fast and not small and isinstance(fig.canvas, FigureCanvasAgg):
            return rgba_to_png(_draw_rgba(fig, dpi))
        if small and isinstance(fig.canvas, FigureCanvasAgg):
            from PIL import Image

            rgb = Image.fromarray(_draw_rgba(fig, dpi)[..., :3])
            indexed = rgb.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
            buf = io.BytesIO()
            indexed.save(buf, format="png", optimize=True)
            return buf.getvalue()
        buf = io.BytesIO()
        pil_kwargs = {"optimize": True} if small else {"compress_level": 1} if fast else None
        fig.savefig(buf, format="png", dpi=dpi, facecolor="white", pil_kwargs=pil_kwargs)
    return buf.getvalue()


def _draw_rgba(fig: Figure, dpi: float) -> np.ndarray:
    """Draw ``fig`` at ``dpi`` on a white background, as savefig does; its pixels (a copy)."""
    old_dpi, old_face = fig.dpi, fig.patch.get_facecolor()
    try:
        fig.dpi = dpi
        fig.patch.set_facecolor("white")
        fig.canvas.draw()
        return np.array(fig.canvas.buffer_rgba())
    finally:
        fig.patch.set_facecolor(old_face)
        fig.dpi = old_dpi


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def rgba_to_png(rgba: np.ndarray, level: int = 1) -> bytes:
    """Lossless PNG of an ``(H, W, 4)`` uint8 image, built for speed (widget redraws).

    An opaque image (every figure on its white background) is stored as RGB; rows are not
    filtered and zlib runs at ``level`` 1: for plots (flat colours, long runs of white) that is
    as small as PIL's adaptive filtering, which costs more than the compression itself.
    """
    rgba = np.asarray(rgba)
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
        raise ValueError(f"need an (H, W, 4) uint8 image, got {rgba.shape} {rgba.dtype}")
    h, w, _ = rgba.shape
    channels = 3 if rgba[..., 3].min() == 255 else 4
    rows = np.zeros((h, 1 + w * channels), np.uint8)  # first byte of a row: filter 0 (none)
    rows[:, 1:].reshape(h, w, channels)[...] = rgba[..., :channels]
    header = struct.pack(">IIBBBBB", w, h, 8, 2 if channels == 3 else 6, 0, 0, 0)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(rows.data, level)),
            _png_chunk(b"IEND", b""),
        )
    )


def new_figure(
    nrows: int = 1,
    ncols: int = 1,
    *,
    figsize: tuple[float, float] | None = None,
    squeeze: bool = True,
    gridspec_kw: dict[str, Any] | None = None,
    **subplot_kw: Any,
) -> tuple[CourseFigure, Any]:
    """Create a course-styled figure and its axes (like ``plt.subplots`` but with no global state).

    Returns ``(fig, axes)``; ``axes`` is one ``Axes`` when ``squeeze`` and the grid is 1x1, otherwise a
    NumPy array of axes.
    """
    if nrows < 1 or ncols < 1:
        raise ValueError(f"need at least one row and one column, got {nrows}x{ncols}")
    if figsize is None:
        figsize = (min(3.2 * ncols + 0.6, 12.0), 2.6 * nrows + 0.4)
    with course_style():
        fig = CourseFigure(figsize=figsize, layout="constrained")
        axes = fig.subplots(
            nrows, ncols, squeeze=squeeze, subplot_kw=subplot_kw or None, gridspec_kw=gridspec_kw
        )
    return fig, axes


def use_course_style() -> None:
    """Apply the course style to every later figure of this session (an explicit, opt-in call)."""
    mpl.rcParams.update(STYLE)


def styled(func):
    """Decorator for plot functions: draw inside :func:`course_style`, so text and colours match."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with course_style():
            return func(*args, **kwargs)

    return wrapper
