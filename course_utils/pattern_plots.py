"""The pattern-search view (LSTMVis's select-and-match): units x steps, a selection, its best matches.

:func:`pattern_explorer` shows one example's states as a units x steps heatmap with the selected
span boxed and the pattern's units marked (:func:`course_utils.patterns.find_pattern` finds them),
and beside it the best-matching spans of the batch, one row each, showing the pattern units' values
there. Every panel uses one colour scale; padding is never drawn.
"""

from __future__ import annotations

import math
from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import blended_transform_factory

from .patterns import find_pattern
from .plots import per_example, shared_norm, to_numpy
from .style import SIGNED_CMAP
from .widgets import FigureExplorer, View, index_control

__all__ = ["PatternView", "pattern_explorer"]

#: The most tick labels on the steps axis (one per step up to this many steps).
MAX_STEP_LABELS = 40
#: Steps of the threshold slider over the range of the values: each arrow key moves it visibly.
THRESHOLD_STEPS = 50
#: Height of one match row (its label and its values), in inches.
ROW_INCHES = 0.48


def _nice_step(span: float) -> float:
    """A round slider step (1, 2 or 5 times a power of ten) near ``span / THRESHOLD_STEPS``."""
    raw = max(span, 1e-9) / THRESHOLD_STEPS
    power = 10 ** math.floor(math.log10(raw))
    return min((m * power for m in (1, 2, 5, 10)), key=lambda s: abs(s - raw))


def _ticks(count: int, most: int) -> list[int]:
    """Round tick positions within ``0 .. count - 1`` (at most about ``most``)."""
    return [
        int(t) for t in MaxNLocator(most, integer=True).tick_values(0, count - 1) if 0 <= t < count
    ]


class PatternView(View):
    """The figure of :func:`pattern_explorer`, built once and updated per control change.

    Controls: ``example, layer, direction, start, length, threshold`` (see :func:`find_pattern`;
    a selection past an example's real steps is cut at its last step, and the title says so).
    """

    main_controls = ("start", "threshold")  # what a saved HTML file keeps working first

    def __init__(self, trace: Any, *, tokens: Any = None, what: str = "h", top: int = 5) -> None:
        states = tuple(getattr(trace, "states", ("h", "c")))
        if what not in states:
            raise ValueError(f"what must be one of this trace's states {states}, got {what!r}")
        if top < 1:
            raise ValueError(f"top must be at least 1 (matches shown), got {top}")
        self.trace, self.what, self.top = trace, what, top
        self.values = to_numpy(getattr(trace, what))  # (L, D, B, T, U)
        self.lengths = [int(n) for n in trace.lengths]
        self.tokens = per_example(tokens, len(self.lengths), self.lengths)
        real = np.arange(self.values.shape[3])[None, :] < np.array(self.lengths)[:, None]  # (B, T)
        self.real_values = self.values[:, :, real]  # (L, D, real steps, U): no padding
        self.norm = shared_norm([self.real_values], signed=True)
        self.art: dict[str, Any] = {}

    @staticmethod
    def figsize(top: int) -> tuple[float, float]:
        """Width and height in inches: the heatmap on the left, one row per match on the right."""
        return 8.4, max(3.2, 0.75 + ROW_INCHES * top)

    def build(self, fig: Figure) -> None:
        height = fig.get_figheight()

        def frac(inches: float) -> float:  # a height in inches as a fraction of the figure
            return inches / height

        units = self.values.shape[-1]
        bottom, top = frac(0.55), 1 - frac(0.3)
        main = fig.add_axes((0.07, bottom, 0.44, top - bottom))
        image = main.imshow(
            np.zeros((units, 1)), aspect="auto", interpolation="nearest", norm=self.norm,
            cmap=SIGNED_CMAP,
        )  # fmt: skip
        main.set_ylabel("unit")
        main.set_xlabel("step (token)" if self.tokens else "step")
        main.set_yticks(_ticks(units, 4))  # fixed ticks: cheaper to draw than a locator's
        main.xaxis.set_label_coords(0.5, -frac(0.34) / (top - bottom))
        main.yaxis.set_label_coords(-0.09, 0.5)
        main.set_title(" ", fontsize=9)
        main.title.set(x=0.0, horizontalalignment="left")  # a long title: from the left edge
        box = Rectangle((0, 0), 1, 1, fill=False, edgecolor="black", lw=1.8)
        main.add_patch(box)
        left_edge = blended_transform_factory(main.transAxes, main.transData)
        (marks,) = main.plot(
            [], [], ls="none", marker=">", color="black", ms=4, transform=left_edge, clip_on=False
        )
        cax = fig.add_axes((0.525, bottom, 0.012, top - bottom))
        bar = fig.colorbar(image, cax=cax)
        bar.set_label(self.what, labelpad=0)
        reach = float(self.norm.vmax)
        bar.set_ticks([-reach, 0.0, reach], labels=[f"{-reach:.2g}", "0", f"{reach:.2g}"])
        level = cax.axhline(0.0, color="black", lw=2)
        rows = []
        for k in range(self.top):  # label above, values below, ROW_INCHES a row
            row_top = 1 - frac(0.72 + ROW_INCHES * k)
            ax = fig.add_axes(
                (0.62, row_top - frac(ROW_INCHES - 0.2), 0.35, frac(ROW_INCHES - 0.2))
            )
            row_image = ax.imshow(
                np.zeros((1, 1)), aspect="auto", interpolation="nearest", norm=self.norm,
                cmap=SIGNED_CMAP,
            )  # fmt: skip
            ax.set_axis_off()  # the values are the row; its label says where it is
            label = ax.text(0, 1.04, "", transform=ax.transAxes, va="bottom", fontsize=7.5)
            rows.append((ax, row_image, label))
        heading = fig.text(0.62, top + frac(0.05), "", va="top", fontsize=8)
        self.art = {
            "main": main, "image": image, "box": box, "marks": marks, "level": level,
            "rows": rows, "heading": heading, "ticks_of": None,
        }  # fmt: skip

    def _labels(self, example: int, start: int, stop: int) -> str:
        if self.tokens is None:
            return ""
        text = " ".join(self.tokens[example][start:stop])
        return f' "{text[:24]}{"..." if len(text) > 24 else ""}"'

    def update(
        self,
        fig: Figure,
        *,
        example: int,
        layer: int,
        direction: int,
        start: int,
        length: int,
        threshold: float,
    ) -> None:
        art = self.art
        real = self.lengths[example]
        # past the example's end: the selection moves back to fit (and is cut only when the whole
        # example is shorter), so every move of start or length changes what is selected
        wanted = start
        start = max(0, min(start, real - length))
        stop = min(start + length, real)
        cut = stop - start < length
        moved = start != wanted
        values = self.values[layer, direction, example, :real].T  # (U, real steps)
        units = values.shape[0]
        art["image"].set_data(values)
        art["image"].set_extent((-0.5, real - 0.5, units - 0.5, -0.5))
        main = art["main"]
        main.set_xlim(-0.5, real - 0.5)
        main.set_ylim(units - 0.5, -0.5)
        if self.tokens is None and art["ticks_of"] != real:  # new ticks for a new length only
            art["ticks_of"] = real
            main.set_xticks(_ticks(real, 6))
        elif self.tokens is not None and art["ticks_of"] != example:  # a new example's labels
            art["ticks_of"] = example
            ticks = range(0, real, max(1, math.ceil(real / MAX_STEP_LABELS)))
            labels = [self.tokens[example][t] for t in ticks]
            upright = len(ticks) <= 12 and max(map(len, labels)) <= 3
            main.set_xticks(ticks, labels, rotation=0 if upright else 90)
        art["box"].set_bounds(start - 0.5, -0.5, stop - start, units)
        art["level"].set_ydata([threshold, threshold])
        main.title.set_text(
            f"example {example}, layer {layer}{' backward' if direction else ''}: {self.what}; "
            f"steps {start}-{stop - 1} boxed"
            f"{' (cut at the last real step)' if cut else ' (moved to fit)' if moved else ''}, "
            f"threshold {threshold:.3g}"
        )
        try:
            pattern = find_pattern(
                self.trace, example=example, start=start, stop=stop, threshold=threshold,
                layer=layer, direction=direction, what=self.what, top=self.top,
            )  # fmt: skip
        except ValueError:  # no unit on: say so (in short lines), draw no matches
            pattern = None
            lowest = values[:, start:stop].min(axis=1)  # (U,) each unit's floor in the box
            heading = (
                f"no unit stays above {threshold:.3g} at every boxed\nstep; the best, unit "
                f"{lowest.argmax()}, stays above {lowest.max():.3g}:\nlower the threshold"
            )
        chosen = list(pattern.units) if pattern else []
        matches = pattern.matches if pattern else ()
        if pattern is not None:
            shown = ",".join(map(str, chosen[:6])) + (",..." if len(chosen) > 6 else "")
            plural = "s" if len(chosen) > 1 else ""
            heading = f"pattern (>): {len(chosen)} unit{plural}: {shown}" + (
                "" if matches else "\nno other span has any of these units on"
            )
        art["heading"].set_text(heading)
        art["marks"].set_data([-0.012] * len(chosen), chosen)
        for k, (ax, row_image, label) in enumerate(art["rows"]):
            ax.set_visible(k < len(matches))
            if k >= len(matches):
                continue
            m = matches[k]
            span = self.values[layer, direction, m.example, m.start : m.stop][:, chosen].T
            row_image.set_data(span)  # (pattern units, span steps)
            row_image.set_extent((-0.5, m.stop - m.start - 0.5, len(chosen) - 0.5, -0.5))
            ax.set_xlim(-0.5, m.stop - m.start - 0.5)
            ax.set_ylim(len(chosen) - 0.5, -0.5)
            label.set_text(
                f"{m.overlap:.2f}  ex {m.example}, steps {m.start}-{m.stop - 1}"
                f"{self._labels(m.example, m.start, m.stop)}"
            )


def pattern_explorer(
    trace: Any,
    *,
    tokens: Any = None,
    what: str = "h",
    example: int = 0,
    start: int = 0,
    length: int = 3,
    threshold: float | None = None,
    top: int = 5,
    title: str | None = None,
) -> FigureExplorer:
    """Select steps of an example and a threshold; see which units are on and where else they are.

    LSTMVis's select-and-match on any recurrent trace (``LSTMTrace``, ``GRUTrace``): the units
    above ``threshold`` at every selected step form the pattern, and the ``top`` spans of the
    batch where the same units are on are shown beside it, best first. Redraws update the
    artists of one figure (no axes are rebuilt).

    Args:
        trace: the trace to search (``trace_lstm(...)``, a record from ``trace_lstms``).
        tokens: labels of the steps: one list of str for every example, or one list per example.
        what: the state shown and searched, one of ``trace.states``.
        example, start, length: the first selection; ``threshold``: the first threshold
            (default: half the largest value, rounded to the slider's step).
        top: how many matches to show.
    """
    view = PatternView(trace, tokens=tokens, what=what, top=top)
    batch, seq_len = view.values.shape[2], view.values.shape[3]
    lo, hi = float(view.norm.vmin), float(view.norm.vmax)
    step = _nice_step(hi - lo)
    if threshold is None:
        threshold = round(0.5 * float(view.real_values.max()) / step) * step
    if not lo <= threshold <= hi:
        raise ValueError(f"threshold must be within the values' range [{lo:.3g}, {hi:.3g}]")
    slider = widgets.FloatSlider(value=threshold, min=lo, max=hi, step=step, readout_format=".3g")
    slider.description = "threshold"
    controls = {
        "example": index_control("example", batch, example),
        "layer": index_control("layer", view.values.shape[0], view.values.shape[0] - 1),
        "direction": index_control("direction", view.values.shape[1], 0),
        "start": index_control("start", seq_len, min(start, seq_len - 1)),
        "length": index_control("length", seq_len, min(max(length, 1), seq_len), first=1),
        "threshold": slider,
    }
    return FigureExplorer(
        view,
        controls,
        figsize=view.figsize(top),
        layout=None,
        title=title
        or (
            "Pattern search (as in LSTMVis): the units above the threshold (the line on the colour "
            "bar) at every boxed step form the pattern (marked >). On the right, the spans of the "
            "batch where the same units are on, best first; each row shows the pattern units "
            "there, labelled with its overlap (the Jaccard index of the units on there and the "
            "pattern), example and steps"
        ),
    )
