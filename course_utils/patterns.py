"""Pattern search in a recurrent trace, after LSTMVis: which units are on over a phrase, and where else.

Select a span of steps of one example and a threshold: the units whose state stays above the
threshold at every step of the span are the *pattern*. :func:`find_pattern` then ranks every other
span of the same length in the traced batch by how closely the units on there match the pattern,
as the match view of LSTMVis does (Strobelt et al., "LSTMVis: A Tool for Visual Analysis of Hidden
State Dynamics in Recurrent Neural Networks", 2017)::

    trace = trace_lstm(lstm, x)
    pattern = find_pattern(trace, example=0, start=2, stop=5, threshold=0.5)
    pattern.units            # (0,): the units on at every step 2, 3, 4 of example 0
    pattern.matches[0]       # Match(example=1, start=5, stop=8, overlap=1.0, units_on=(0,))

Computing only; :func:`course_utils.pattern_plots.pattern_explorer` draws it. Any recurrent trace
works (``LSTMTrace``, ``GRUTrace``: ``states``, ``lengths`` and ``layer()``); ``what`` is one of its
``states``, searched at the real steps of each example only (never padding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["Match", "Pattern", "find_pattern"]


@dataclass(frozen=True)
class Match:
    """A span ``start .. stop - 1`` of one example where the pattern's units are on.

    Attributes:
        example: the example (row of the traced batch), 0-based.
        start, stop: the span's steps, ``stop`` excluded (real steps only, never padding).
        overlap: Jaccard index of the pattern's units and ``units_on`` (1.0: the very same units).
        units_on: the units above the threshold at every step of the span, in increasing order.
    """

    example: int
    start: int
    stop: int
    overlap: float
    units_on: tuple[int, ...]


@dataclass(frozen=True)
class Pattern:
    """The units on over a selected span, and the other spans where they are on (best first).

    Attributes:
        example, start, stop: the selection (steps ``start .. stop - 1`` of that example).
        threshold: a unit is *on* at a step where its value is above (``>``) this.
        layer, direction, what: where the values come from (``layer`` 0-based, never negative).
        units: the pattern, the units on at every step of the selection, in increasing order.
        matches: the best non-overlapping spans, highest overlap first (see :func:`find_pattern`).
    """

    example: int
    start: int
    stop: int
    threshold: float
    layer: int
    direction: int
    what: str
    units: tuple[int, ...]
    matches: tuple[Match, ...]

    @property
    def length(self) -> int:
        """Steps in the selection (and in every match)."""
        return self.stop - self.start


def _values(trace: Any, what: str, layer: int, direction: int) -> tuple[torch.Tensor, int, int]:
    """``what`` of one layer and direction, ``(B, T, units)``, and the layer and direction checked."""
    states = tuple(getattr(trace, "states", ("h", "c")))
    if what not in states:
        raise ValueError(
            f"what must be one of this trace's states {states}, got {what!r} (gates are not "
            "searched: a unit is on where its state is above the threshold)"
        )
    part = trace.layer(layer, direction)  # checks both (IndexError); layer -1 is the top
    return getattr(part, what), part.layer, part.direction


def _check_span(lengths: np.ndarray, example: int, start: int, stop: int) -> None:
    batch = len(lengths)
    if not 0 <= example < batch:
        raise IndexError(f"example must be in [0, {batch}), got {example}")
    length = int(lengths[example])
    if not 0 <= start < stop <= length:
        raise ValueError(
            f"expected a selection 0 <= start < stop <= {length} (example {example} has {length} "
            f"real steps, stop excluded), got start={start}, stop={stop}"
        )


def _window_on(on: np.ndarray, n: int) -> np.ndarray:
    """``(B, T - n + 1, units)`` bool: unit on at every step of the window ``s .. s + n - 1``."""
    counts = np.zeros((on.shape[0], on.shape[1] + 1, on.shape[2]), dtype=np.int32)
    np.cumsum(on, axis=1, out=counts[:, 1:])  # (B, T + 1, U): steps on before each step
    return (counts[:, n:] - counts[:, :-n]) == n


def find_pattern(
    trace: Any,
    *,
    example: int,
    start: int,
    stop: int,
    threshold: float,
    layer: int = -1,
    direction: int = 0,
    what: str = "h",
    top: int = 10,
) -> Pattern:
    """The units on over steps ``start .. stop - 1`` of ``example``, and the spans that match them.

    A unit is *on* at a step where its ``what`` is above ``threshold``. The pattern ``P`` is the
    set of units on at every step of the selection. Every other span of the same length ``n`` in the
    batch (any example, real steps only) has its own set ``S`` of units on at every one of its
    steps; its **overlap** is the Jaccard index ``|P & S| / |P | S|``: the share of the pattern's
    units on there, lowered by every extra unit on (1.0 only for the very same units; 0 when none
    of the pattern's units is on). Spans are taken greedily, highest overlap first (ties: lower
    example, then earlier start), skipping any span that overlaps the selection or a span already
    taken in the same example, until ``top`` spans with an overlap above 0 are found.

    Differs from LSTMVis's match view: LSTMVis lets match lengths vary (a match is where the
    pattern's cells switch on and off again) and ranks by the number of matching cells; here every
    span has the selection's length and the ranking is the Jaccard overlap, so extra units on
    count against a span.

    Args:
        trace: an ``LSTMTrace`` or ``GRUTrace`` (anything with ``states``, ``lengths`` and a
            ``layer(layer, direction)`` whose attributes, named by the states, are ``(B, T, units)``).
        example, start, stop: the selection (0-based; ``stop`` excluded, within the real steps).
        threshold: the value a unit must exceed to be on.
        layer, direction: which layer (``-1``: the top) and direction (1: backward) to search.
        what: the state searched, one of ``trace.states`` (``"h"`` or ``"c"`` for an LSTM).
        top: at most this many matches.

    Raises:
        ValueError: a selection outside the example's real steps, a ``what`` that is not a state,
            or a threshold that leaves no unit on over the whole selection (the message says the
            highest value any unit stays above there).
        IndexError: an example, layer or direction out of range.
    """
    if top < 0:
        raise ValueError(f"top must be 0 or more, got {top}")
    values, layer, direction = _values(trace, what, layer, direction)  # (B, T, U)
    lengths = trace.lengths.cpu().numpy()
    _check_span(lengths, example, start, stop)
    # on the values' device only the comparison; the small boolean array is searched on the CPU
    on = (values > threshold).cpu().numpy()  # (B, T, U)
    selected = on[example, start:stop].all(axis=0)  # (U,)
    if not selected.any():
        floor = values[example, start:stop].min(dim=0).values  # (U,) each unit's lowest value
        best = int(floor.argmax())
        raise ValueError(
            f"no unit's {what} stays above threshold {threshold:g} at every step {start}..{stop - 1} "
            f"of example {example}: the highest any unit stays above there is "
            f"{float(floor[best]):.4g} (unit {best}); choose a threshold below that"
        )
    n = stop - start
    window_on = _window_on(on, n)  # (B, T - n + 1, U)
    shared = (window_on & selected).sum(axis=2)  # (B, T - n + 1)
    union = (window_on | selected).sum(axis=2)  # >= |P| >= 1
    real = np.arange(window_on.shape[1])[None, :] + n <= lengths[:, None]  # no padding inside
    overlap = np.where(real, shared / union, 0.0)  # (B, T - n + 1)
    flat = overlap.ravel()
    taken: dict[int, list[tuple[int, int]]] = {example: [(start, stop)]}
    matches: list[Match] = []
    for k in np.argsort(-flat, kind="stable"):  # ties: lower example, then earlier start
        if len(matches) >= top or flat[k] <= 0.0:
            break
        b, s = divmod(int(k), overlap.shape[1])
        if any(s < e and a < s + n for a, e in taken.get(b, ())):
            continue
        taken.setdefault(b, []).append((s, s + n))
        units_on = tuple(int(u) for u in np.flatnonzero(window_on[b, s]))
        matches.append(Match(b, s, s + n, float(flat[k]), units_on))
    units = tuple(int(u) for u in np.flatnonzero(selected))
    return Pattern(
        example, start, stop, float(threshold), layer, direction, what, units, tuple(matches)
    )
