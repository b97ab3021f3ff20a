"""Tests of course_utils.comparison_plots: one bar per strategy and group, chance from the data."""

from __future__ import annotations

import pytest

from course_utils.comparison_plots import plot_comparison
from course_utils.style import new_figure


def test_plot_comparison_draws_one_bar_per_strategy_and_kind_and_each_groups_chance():
    accs = {"a": {"all": 0.6, "plain": 0.7}, "b": {"all": 0.8, "plain": 0.9}}
    fig = plot_comparison(accs, chance={"all": 0.55, "plain": 0.66})
    ax = fig.axes[0]
    assert len(ax.patches) == 4
    assert ax.get_ylabel() == "test accuracy"
    levels = sorted(
        {round(y, 2) for c in ax.collections for seg in c.get_segments() for y in seg[:, 1]}
    )
    assert levels == [0.55, 0.66]  # one majority rate per group, not a hard-coded 0.5
    with pytest.raises(TypeError):
        plot_comparison(accs)  # chance is required: it comes from the data
    with pytest.raises(ValueError, match="one majority rate per key"):
        plot_comparison(accs, chance={"all": 0.5})
    with pytest.raises(ValueError, match="expected"):
        plot_comparison({"a": {"all": 0.5}, "b": {"plain": 0.5}}, chance=0.5)


def test_plot_comparison_draws_into_given_axes_and_returns_their_figure():
    fig, axes = new_figure(1, 2)
    out = plot_comparison({"a": {"all": 0.6}}, chance=0.5, ax=axes[1])
    assert out is fig and len(axes[1].patches) == 1 and not axes[0].patches
    assert axes[1].get_xlabel() == "strategy"
