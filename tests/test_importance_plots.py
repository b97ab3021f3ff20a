"""Importance plots and the explorer widget: data in, figure out, one reused figure, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from course_utils.importance import LayerImportance, layer_names
from course_utils.importance_plots import (
    ImportanceView,
    importance_explorer,
    plot_accuracy_comparison,
    plot_example_importance,
    plot_layer_importance,
    plot_method_comparison,
    signed_shares,
)
from course_utils.style import new_figure
from tests.view_tools import assert_fresh_build_matches

N, K = 20, 7


def _imp(method: str, seed: int, per_example: bool = True) -> LayerImportance:
    scores = torch.randn(N, K, generator=torch.Generator().manual_seed(seed))
    scores[:, 0] = 0.0
    if not per_example:
        scores = scores[:1].abs().expand(N, K).clone()
    return LayerImportance(method, scores, layer_names(K), per_example=per_example)


@pytest.fixture
def imps() -> list[LayerImportance]:
    return [_imp("ablation", 0), _imp("gradient x input", 1), _imp("mix weights", 2, False)]


def test_signed_shares_keep_the_sign_and_sum_to_one_in_absolute_value(imps):
    shares = signed_shares(imps[0], 3)
    assert np.isclose(np.abs(shares).sum(), 1.0)
    assert np.array_equal(np.sign(shares), np.sign(imps[0].scores[3].numpy()))
    with pytest.raises(IndexError, match=r"\[0, 19\]"):
        signed_shares(imps[0], N)


def test_layer_importance_plot_draws_on_the_given_axes(imps):
    fig, ax = new_figure()
    out = plot_layer_importance(imps[0], ax=ax, highlight=2)
    assert out is fig
    assert [t.get_text() for t in ax.get_xticklabels()] == layer_names(K)
    assert ax.get_xlabel() and ax.get_ylabel() == imps[0].unit
    highlighted = [line for line in ax.lines if line.get_label() == "example 2"]
    assert len(highlighted) == 1
    np.testing.assert_allclose(highlighted[0].get_ydata(), imps[0].scores[2].numpy())
    # A method without spread (mix weights) is drawn as bars of its one row.
    fig2 = plot_layer_importance(imps[2])
    heights = [p.get_height() for p in fig2.axes[0].patches]
    np.testing.assert_allclose(heights, imps[2].scores[0].numpy(), rtol=1e-6)


def test_example_plot_groups_one_bar_per_method_and_layer(imps):
    fig = plot_example_importance(imps, 5)
    ax = fig.axes[0]
    assert len(ax.patches) == len(imps) * K
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [i.method for i in imps]


def test_method_comparison_rows_are_shares_on_one_scale(imps):
    fig = plot_method_comparison(imps)
    image = fig.axes[0].images[0]
    data = np.asarray(image.get_array())
    assert data.shape == (len(imps), K)
    np.testing.assert_allclose(data.sum(axis=1), 1.0, rtol=1e-6)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [i.method for i in imps]


def test_methods_must_cover_the_same_layers(imps):
    other = LayerImportance("short", torch.zeros(N, 3), layer_names(3))
    with pytest.raises(ValueError, match="different layers"):
        plot_method_comparison([imps[0], other])


def test_accuracy_comparison_orders_best_on_top():
    fig = plot_accuracy_comparison({"a": [0.6, 0.7], "b": torch.tensor([0.9, 0.95])}, chance=0.5)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["a", "b"]  # best last = top
    with pytest.raises(ValueError, match="at least one"):
        plot_accuracy_comparison({})


def test_explorer_first_view_controls_and_redraw(imps):
    texts = [f"sentence {i}" for i in range(N)]
    targets = torch.randint(0, 2, (N,))
    nested = {"lstm": {i.method: i for i in imps[:2]}, "mix": {i.method: i for i in imps}}
    ex = importance_explorer(
        nested,
        texts=texts,
        targets=targets,
        predictions={"lstm": targets, "mix": 1 - targets},
        model="mix",
        method="mix weights",
        index=4,
    )
    assert set(ex.controls) == {"model", "method", "index"}
    assert isinstance(ex.figure, Figure) and ex.static_png().startswith(b"\x89PNG")
    title = " ".join(t.get_text() for t in ex.figure.texts)
    assert "sentence 4" in title and "mix predicts" in title
    ex.controls["index"].value = 7
    assert "sentence 7" in " ".join(t.get_text() for t in ex.figure.texts)
    # A method the chosen model does not have is explained, not an error.
    ex.controls["model"].value = "lstm"
    assert ex.error.value == ""
    assert any("has no 'mix weights'" in t.get_text() for ax in ex.figure.axes for t in ax.texts)
    assert len(ex.redraw_seconds) == 3


def test_explorer_flat_input_and_validation(imps):
    ex = importance_explorer(imps[:2])
    assert set(ex.controls) == {"method", "index"}
    with pytest.raises(ValueError, match="texts has 3 entries"):
        importance_explorer(imps[:2], texts=["a", "b", "c"])
    with pytest.raises(ValueError, match="unknown method"):
        importance_explorer(imps[:2], method="shapley")
    with pytest.raises(ValueError, match="unknown model"):
        importance_explorer({"m": {"a": imps[0]}}, model="other")


def test_explorer_updates_its_panels_in_place(imps):
    """An ImportanceView: panels are built once per view, then only their data changes."""
    ex = importance_explorer(imps, method="ablation", index=2)
    top, bottom = (ax for ax in ex.figure.axes if ax.get_visible())
    ex.controls["index"].value = 9
    assert [ax for ax in ex.figure.axes if ax.get_visible()] == [top, bottom]  # same axes, updated
    (line,) = (ln for ln in top.lines if ln.get_label() == "example 9")
    np.testing.assert_allclose(line.get_ydata(), imps[0].scores[9].numpy())
    for bars, imp in zip(bottom.containers, imps, strict=True):
        heights = [bar.get_height() for bar in bars]
        np.testing.assert_allclose(heights, signed_shares(imp, 9), rtol=1e-6)
    lo, hi = top.get_ylim()
    assert lo <= imps[0].scores[9].min() and hi >= imps[0].scores[9].max()
    # Going to another method and back reuses the panel built first.
    ex.controls["method"].value = "mix weights"
    ex.controls["method"].value = "ablation"
    assert len(ex.figure.axes) == 3 and top.get_visible()


def test_importance_explorer_is_a_view_that_a_fresh_build_redraws_alike(imps):
    """Built once and updated in place (panels hidden and shown again), the explorer shows what
    a view built anew for the same values shows, to the pixel."""
    nested = {"lstm": {i.method: i for i in imps[:2]}, "mix": {i.method: i for i in imps}}
    texts = [f"sentence {i}" for i in range(N)]
    ex = importance_explorer(nested, texts=texts, targets=torch.zeros(N, dtype=torch.long))
    moves = (("index", 7), ("model", "mix"), ("method", "mix weights"), ("model", "lstm"))
    for name, value in moves + (("model", "mix"), ("method", "ablation"), ("index", 12)):
        ex.controls[name].value = value
    assert isinstance(ex.view, ImportanceView) and ex.error.value == ""
    assert_fresh_build_matches(ex)
