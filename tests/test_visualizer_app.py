"""The visualizer app (``make visualize``): its shipped weights load, every tab draws, the sentence
picker and the typed text follow each other, the control model is the untrained twin."""

from __future__ import annotations

import nbformat
import pytest
import torch

from course_utils.visualizer_app import WEIGHTS, VisualizerApp, load_models
from tests.notebook_tools import ROOT


@pytest.fixture(scope="module")
def app():
    return VisualizerApp.load()


def test_weights_are_small_and_shipped():
    assert WEIGHTS.exists(), "run scripts/make_app_weights.py"
    assert WEIGHTS.stat().st_size < 1_000_000  # float16, kept small for the repository


def test_app_notebook_is_one_code_cell_that_builds_the_page():
    nb = nbformat.read(ROOT / "app" / "visualizer.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) == 1 and "VisualizerApp.load()" in code[0].source


def test_every_tab_draws_and_the_picker_and_typed_text_follow_each_other(app):
    assert "drawn in" in app.status.value, app.status.value
    assert (
        app.attention.controls["sentence"].layout.display == "none"
    )  # the page's picker drives it
    assert "prediction:" in app.prediction.value
    assert app.states.children and app.importance.children
    importance = app.importance.children[0]
    assert set(importance.controls["model"].options) == {"trained", "untrained (control)"}
    before = importance.static_png()
    app.typed.value = "Profits did not fall, but sales dropped sharply."
    assert app.menu.index is None and app.text.startswith("Profits did not fall")
    assert app.attention.controls["own"].value == app.text
    assert app.importance.children[0].static_png() != before
    app.menu.value = app.sentences[1]
    assert app.typed.value == "" and app.text == app.sentences[1]


def test_the_control_is_the_untrained_twin_of_the_trained_pooling(app):
    models = load_models(app.encoder)
    trained, untrained = models["pooling"], models["untrained"]
    z = models["reference"] + torch.randn(3, app.encoder.num_layers + 1, 384)
    assert not torch.allclose(trained(z), untrained(z))  # the trained weights were loaded
    again = load_models(app.encoder)["untrained"]
    torch.testing.assert_close(untrained(z), again(z))  # the control is the same every start


def test_every_accuracy_stands_next_to_the_test_majority_rate_and_size(app):
    from course_utils.checks import majority_rate
    from course_utils.tasks import sentiment_task

    models = app.models
    how = models["training"]
    token_labels = sentiment_task(how["sentences"], seed=0).test[1]
    pool = how["pooling_sentences"]
    pool_labels = sentiment_task(
        pool["n"], seed=0, kind_weights=pool["kind_weights"], fractions=pool["fractions"]
    ).test[1]
    intro = app.intro.value
    for key, labels in (("token_lstm", token_labels), ("pooling", pool_labels)):
        assert models["test_size"][key] == len(labels)  # computed from the script's own split
        assert models["test_majority"][key] == pytest.approx(majority_rate(labels))
        assert f"n={len(labels)}" in intro and f"{majority_rate(labels):.3f}" in intro
        # a model shown on the page learned something: above its majority rate
        assert models["test_accuracy"][key] > models["test_majority"][key] + 0.1
    assert intro.count("against the majority rate") == 2  # both classifiers
    assert "not the notebooks' own models" in intro and "early stopping" in intro


def test_the_tabs_say_what_they_explain_and_what_they_do_not(app):
    attention_tab, _, importance_tab = app.tabs.children
    assert "not explanations" in attention_tab.children[1].value  # under the tab's guide
    assert "<b>predicted</b> class" in importance_tab.children[1].value
    assert importance_tab.children[2] is app.importance


def test_every_tab_opens_with_what_it_shows_and_what_to_look_for(app):
    for tab, title in zip(
        app.tabs.children, ("attention", "BERT + LSTM", "layer importance"), strict=True
    ):
        guide = tab.children[0].value
        assert "What it shows:" in guide and "What to look for:" in guide, title
    assert "predicted class" in app.tabs.children[2].children[0].value


def test_the_lstm_grid_names_the_token_at_each_step(app):
    app.menu.value = app.sentences[1]  # longer than the grid's window of 10 steps
    view = app.states.children[0].current
    view.controls["step"].value = 0
    first = [t.get_text() for t in view.figure.axes[0].texts]
    assert "[CLS]" in first and "[SEP]" not in first, first
    view.controls["step"].value = view.controls["step"].max  # the last window: its own tokens
    last = [t.get_text() for t in view.figure.axes[0].texts]
    assert "[SEP]" in last and "[CLS]" not in last, last
    inspector = app.states.children[0]
    second = [name for name, kind in inspector.kinds.items() if kind == "lstm"][1]
    inspector.picker.value = second  # the second LSTM's state view is labelled too
    assert "[CLS]" in [t.get_text() for t in inspector.current.figure.axes[0].texts]


def test_importance_spreads_over_the_menu_sentences_with_the_shown_one_picked(app):
    app.menu.value = app.sentences[2]
    explorer = app.importance.children[0]
    index = explorer.controls["index"]
    assert index.max == len(app.sentences) - 1 and index.value == 2
    assert index.layout.display == "none"  # the page's picker drives it
    app.typed.value = "Profits did not fall, but sales dropped sharply."
    index = app.importance.children[0].controls["index"]
    assert index.max == len(app.sentences) and index.value == len(app.sentences)  # typed: added
