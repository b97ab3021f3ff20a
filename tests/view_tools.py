"""The check every explorer's view passes: a view built anew draws what the explorer shows."""

from __future__ import annotations

from course_utils.style import DPI, HIDPI_SCALE, course_style, figure_to_png
from course_utils.widgets import FigureExplorer, View


def assert_fresh_build_matches(explorer: FigureExplorer, view: View | None = None) -> None:
    """Build ``view`` (default: the explorer's own) on the cleared figure, update it for the
    controls' current values, and compare its pixels with what the explorer showed: updating in
    place, after any number of control moves, must draw the same picture as building anew.

    The explorer's figure is left holding the fresh view's picture.
    """
    expected = explorer.static_png()
    view = view if view is not None else explorer.view
    explorer.figure.clear()
    with course_style():
        view.build(explorer.figure)
        view.update(explorer.figure, **explorer.values)
        assert figure_to_png(explorer.figure, DPI * HIDPI_SCALE, fast=True) == expected
