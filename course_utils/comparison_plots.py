"""Pictures that compare trained strategies: test accuracy per strategy, overall and per group.

Compute apart from drawing: the accuracies come from :func:`course_utils.training.accuracy` and the
majority rates from :func:`course_utils.checks.majority_rate`; the function here draws them and
returns the ``Figure``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .style import LINE_COLORS, new_figure, styled


@styled
def plot_comparison(
    accuracy_by_kind: Mapping[str, Mapping[str, float]],
    *,
    chance: float | Mapping[str, float],
    ax: Axes | None = None,
) -> Figure:
    """Grouped bars: test accuracy of each strategy (groups), overall and per sentence kind (bars).

    Args:
        accuracy_by_kind: ``{strategy: {"all": acc, "plain": acc, ...}}``; every strategy must have
            the same keys.
        chance: the majority-class rate of the test labels (``checks.majority_rate``), one per key
            of the accuracies (``{"all": .., "plain": .., ...}``) or one number for all; a short
            dashed line over each bar marks it. Required: chance comes from the data, never 0.5.
        ax: draw into these axes (default: a new figure).

    Returns the ``Figure``.
    """
    if not accuracy_by_kind:
        raise ValueError("give at least one strategy's accuracies")
    kinds = list(next(iter(accuracy_by_kind.values())))
    for name, accs in accuracy_by_kind.items():
        if list(accs) != kinds:
            raise ValueError(f"{name!r} has keys {list(accs)}, expected {kinds}")
    rates = dict(chance) if isinstance(chance, Mapping) else dict.fromkeys(kinds, chance)
    if set(rates) != set(kinds):
        raise ValueError(
            f"chance needs one majority rate per key {kinds}, got {sorted(rates)}; compute them "
            "with checks.majority_rate on each group's test labels"
        )
    if ax is None:
        _, ax = new_figure(figsize=(7.5, 3.0))
    names = list(accuracy_by_kind)
    width = 0.8 / len(kinds)
    x = np.arange(len(names))
    for k, kind in enumerate(kinds):
        values = [accuracy_by_kind[n][kind] for n in names]
        centres = x + (k - (len(kinds) - 1) / 2) * width
        ax.bar(
            centres,
            values,
            width,
            label=kind,
            color=LINE_COLORS[k % len(LINE_COLORS)],
            alpha=1.0 if kind == "all" else 0.7,
        )
        ax.hlines(
            [rates[kind]] * len(names),
            centres - width / 2,
            centres + width / 2,
            color="black",
            linestyle="--",
            linewidth=1,
            label="majority rate" if k == 0 else None,
        )
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1)
    ax.set_ylabel("test accuracy")
    ax.set_xlabel("strategy")
    ax.legend(ncols=len(kinds) + 1, loc="upper left", fontsize=7, frameon=False)
    return ax.figure


__all__ = ["plot_comparison"]
