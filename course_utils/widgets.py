"""Explorer widgets: controls that redraw one reused figure, with a static first view.

Every interactive figure in the course is a :class:`FigureExplorer`. It keeps one matplotlib figure,
redraws it when a control moves, and shows it as a PNG inside an ``ipywidgets.Image``. Its notebook
output also carries that first PNG as a plain ``image/png``, so the figure reads on GitHub and in any
viewer without a kernel, while JupyterLab shows the live widget.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets
import matplotlib as mpl
from matplotlib.figure import Figure

from .style import NO_AUTO_LAYOUT, CourseFigure, course_style, figure_to_png

#: ``draw(fig, **values)``: clear nothing, just draw into ``fig`` for the controls' current values.
DrawFn = Callable[..., Any]


class FigureExplorer(widgets.VBox):
    """Controls plus one figure that is redrawn whenever a control's value changes.

    Args:
        draw: ``draw(fig, **values)`` draws into an empty figure; ``values`` maps each control's name
            to its current value.
        controls: name -> ipywidget (sliders, dropdowns, text boxes ...), shown above the figure.
        figsize: size of the one reused figure, in inches.
        title: optional text shown above the controls.
        layout: the figure's layout engine. ``"constrained"`` (default) places colour bars and
            labels best but costs about 40-60 ms a redraw; ``None`` is fastest, for draw functions
            that place their axes themselves (``fig.add_axes`` or ``fig.subplots_adjust``).
        clear: clear the figure before each draw (default). ``False`` keeps it: the first call of
            ``draw`` gets an empty figure and builds the axes, later calls only update what
            changes (``line.set_data``, ``image.set_data``, ``text.set_text``), which is much
            cheaper than building axes, ticks and colour bars again. After a failed draw the figure
            is cleared, so the next call starts from an empty figure.

    Attributes:
        figure: the reused figure (read it in tests: its axes and texts reflect the current view).
        redraw_seconds: how long each redraw took (drawing and PNG rendering), for benchmarks.
        redraw_cpu_seconds: the same in CPU time of this process (steady when the machine is busy).

    Example:
        >>> ex = FigureExplorer(lambda fig, k: fig.add_subplot().plot(range(k)),
        ...                     {"k": widgets.IntSlider(value=3, min=1, max=9)})
        >>> ex  # doctest: +SKIP   (the last value of a cell: shows the live widget, or its PNG)
    """

    def __init__(
        self,
        draw: DrawFn,
        controls: Mapping[str, widgets.Widget],
        *,
        figsize: tuple[float, float] = (7.0, 3.5),
        title: str | None = None,
        layout: str | None = "constrained",
        clear: bool = True,
    ) -> None:
        if not controls:
            raise ValueError("FigureExplorer needs at least one control (name -> widget)")
        for name, control in controls.items():
            if not hasattr(control, "value"):
                raise TypeError(f"control {name!r} has no 'value' (got {type(control).__name__})")
        self._draw = draw
        self._clear = clear
        self.controls = dict(controls)
        if layout in (None, "none"):  # no engine at all (even a placeholder costs a second draw)
            with mpl.rc_context(NO_AUTO_LAYOUT):
                self.figure: Figure = CourseFigure(figsize=figsize, layout=None)
        else:
            self.figure = CourseFigure(figsize=figsize, layout=layout)
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.error = widgets.HTML()
        self.redraw_seconds: list[float] = []
        self.redraw_cpu_seconds: list[float] = []
        children: list[widgets.Widget] = []
        if title:
            children.append(widgets.HTML(f"<b>{title}</b>"))
        children += [widgets.HBox(list(self.controls.values())), self.error, self.image]
        super().__init__(children)
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.redraw()

    @property
    def values(self) -> dict[str, Any]:
        """The controls' current values, by name."""
        return {name: control.value for name, control in self.controls.items()}

    def redraw(self) -> None:
        """Draw the figure for the current values and show it (an error is shown, not raised)."""
        start, start_cpu = time.perf_counter(), time.process_time()
        if self._clear:
            self.figure.clear()
        try:
            with course_style():
                self._draw(self.figure, **self.values)
            self.error.value = ""
        except Exception as exc:  # show the learner what went wrong instead of a silent widget
            self.error.value = f"<span style='color:#b00'>Cannot draw this view: {exc}</span>"
            self.figure.clear()
            raise
        finally:
            self.image.value = figure_to_png(self.figure, fast=True)
            self.redraw_seconds.append(time.perf_counter() - start)
            self.redraw_cpu_seconds.append(time.process_time() - start_cpu)

    def _on_change(self, _change: dict) -> None:
        try:
            self.redraw()
        except Exception:  # already shown in self.error; a callback must not kill the widget
            pass

    def static_png(self) -> bytes:
        """The figure as it is now, as PNG bytes."""
        return bytes(self.image.value)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if data is not None:
            data["image/png"] = base64.b64encode(self.static_png()).decode("ascii")
        return bundle
