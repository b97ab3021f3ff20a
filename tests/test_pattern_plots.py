"""The pattern-search view: the selection boxed, the pattern marked, the matches as rows."""

from __future__ import annotations

import numpy as np
import pytest
from test_patterns import SENTENCES, bracket_trace

from course_utils.pattern_plots import PatternView, pattern_explorer

TOKENS = [list(sentence) for sentence in SENTENCES]


@pytest.fixture(scope="module")
def trace():
    return bracket_trace()


@pytest.fixture
def explorer(trace):
    return pattern_explorer(trace, tokens=TOKENS, start=2, length=3, threshold=0.5)


def shown_rows(explorer) -> list[str]:
    return [label.get_text() for ax, _, label in explorer.view.art["rows"] if ax.get_visible()]


def test_the_selection_is_boxed_and_its_matches_listed(explorer):
    art = explorer.view.art
    assert tuple(art["box"].get_bbox().bounds) == (1.5, -0.5, 3.0, 3.0)  # steps 2-4, 3 units
    assert list(art["marks"].get_ydata()) == [0]  # unit 0 is the pattern
    assert shown_rows(explorer) == [
        '1.00  ex 1, steps 5-7 "( o o"',
        '1.00  ex 2, steps 7-9 "( o o"',
        '1.00  ex 3, steps 1-3 "( o o"',
    ]
    assert "pattern (>): 1 unit: 0" in art["heading"].get_text()
    assert [t.get_text() for t in art["main"].get_xticklabels()] == TOKENS[0]


def test_no_padding_is_drawn_and_one_colour_scale_serves_every_panel(explorer):
    explorer.controls["example"].value = 3  # 9 real steps of 12
    art = explorer.view.art
    assert art["image"].get_array().shape == (3, 9)
    assert art["main"].get_xlim() == (-0.5, 8.5)
    norms = {id(art["image"].norm)} | {id(image.norm) for _, image, _ in art["rows"]}
    assert len(norms) == 1
    assert art["image"].colorbar.ax.get_ylabel() == "h"  # the one colour bar, labelled


def test_a_threshold_above_every_value_says_so_instead_of_failing(explorer):
    explorer.controls["threshold"].value = 0.7  # unit 0 is 0.76 inside the bracket: still on
    assert len(shown_rows(explorer)) == 3
    explorer.controls["threshold"].value = 0.77
    assert explorer.error.value == ""
    assert shown_rows(explorer) == []
    assert "the best, unit 0, stays above 0.762" in explorer.view.art["heading"].get_text()
    assert len(explorer.view.art["marks"].get_ydata()) == 0


def test_every_arrow_key_step_of_the_threshold_changes_the_picture(explorer):
    slider = explorer.controls["threshold"]
    assert (slider.max - slider.min) / slider.step <= 100
    before = explorer.static_png()
    slider.value = slider.value + slider.step
    assert explorer.static_png() != before


def test_a_selection_past_a_short_example_moves_back_to_fit_and_says_so(explorer):
    with explorer.hold():
        explorer.controls["example"].value = 3  # 9 real steps
        explorer.controls["start"].value = 7
        explorer.controls["length"].value = 4
    assert "steps 5-8 boxed (moved to fit)" in explorer.view.art["main"].get_title()
    before = explorer.static_png()
    explorer.controls["length"].value = 2  # still past the end before; now it fits from step 7
    assert "steps 7-8 boxed, threshold" in explorer.view.art["main"].get_title()
    assert explorer.static_png() != before
    explorer.controls["length"].value = explorer.controls["length"].max  # longer than the example
    assert "(cut at the last real step)" in explorer.view.art["main"].get_title()


def test_one_direction_one_layer_hide_their_controls(explorer):
    assert explorer.controls["direction"].layout.display == "none"
    assert explorer.controls["layer"].layout.display == "none"
    assert explorer.controls["example"].layout.display != "none"


def test_tokens_and_states_are_checked(trace):
    with pytest.raises(ValueError, match="4 lists for 3 examples|one list per example"):
        PatternView(trace, tokens=[["a"]] * 3)
    with pytest.raises(ValueError, match="example 0 has 12 positions but 2 labels"):
        PatternView(trace, tokens=[["a", "b"]] * 4)
    with pytest.raises(ValueError, match="one of this trace's states"):
        PatternView(trace, what="f")


def test_an_h_only_trace_and_one_list_of_tokens_for_every_example(trace):
    class HOnly:  # what a GRUTrace offers
        states = ("h",)
        h, lengths, layer = trace.h, trace.lengths, trace.layer

    explorer = pattern_explorer(HOnly(), tokens=list("abcdefghijkl"), start=2, threshold=0.5)
    assert len(shown_rows(explorer)) == 3
    assert np.isfinite(explorer.view.art["image"].get_array()).all()
