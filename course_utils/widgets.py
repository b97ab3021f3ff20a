"""Explorer widgets: controls that redraw one reused figure, with a static first view.

Every interactive figure in the course is a :class:`FigureExplorer`: the one way to build an explorer.
It keeps one matplotlib figure, redraws it when a control moves, and shows it as a PNG inside an
``ipywidgets.Image``. Its notebook output also carries that first PNG as a plain ``image/png``, so the
figure reads on GitHub and in any viewer without a kernel, while JupyterLab shows the live widget.

How it looks the same everywhere (JupyterLab, Voila, any screen):

- The PNG is rendered at :data:`~course_utils.style.HIDPI_SCALE` times the figure's resolution and
  shown at the figure's own size (``figsize * DPI`` CSS pixels), so text stays sharp on high-DPI
  screens. The image is never enlarged; on an output narrower than the figure it shrinks to fit.
- Controls sit in a box that wraps onto more lines (they never squeeze each other's tracks), their
  descriptions get the width they need, and a control with a single value (a slider ``0..0``, a
  one-option dropdown) is hidden: it would do nothing.
"""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import ipywidgets as widgets
import matplotlib as mpl
from matplotlib.figure import Figure

from .style import DPI, HIDPI_SCALE, NO_AUTO_LAYOUT, CourseFigure, course_style, figure_to_png

#: ``draw(fig, **values)``: clear nothing, just draw into ``fig`` for the controls' current values.
DrawFn = Callable[..., Any]


class View:
    """What an explorer shows: axes built once, then updated for each set of control values.

    The one protocol of every view in the course (the notebook widget, the Voila app and the saved
    HTML file all drive it): :meth:`build` makes everything that does not change when a control
    moves (axes, colour bars, labels, empty artists); :meth:`update` sets the data of those artists
    for the controls' values, which is much cheaper than drawing anew. :class:`FigureExplorer` calls
    ``build`` on an empty figure before the first update (and again after a failed one); ``update``
    may call ``build`` itself when the values need axes of another shape.
    """

    def build(self, fig: Figure) -> None:
        """Make the parts of the figure that stay (called on an empty figure)."""

    def update(self, fig: Figure, **values: Any) -> None:
        """Show the view for these control values (one keyword per control)."""
        raise NotImplementedError


class _DrawView(View):
    """A plain draw function as a :class:`View` (clears and draws everything each time)."""

    def __init__(self, draw: DrawFn, clear: bool) -> None:
        self.draw, self.clear = draw, clear

    def update(self, fig: Figure, **values: Any) -> None:
        if self.clear:
            fig.clear()
        self.draw(fig, **values)

#: An index with more values than this gets a number box instead of a slider (a slider track of a
#: few hundred pixels over hundreds of values jumps dozens of values per pixel dragged).
MAX_SLIDER_VALUES = 64


def index_control(
    description: str, count: int, value: int = 0, *, first: int = 0, width: str | None = None
) -> widgets.Widget:
    """A control to pick one of ``count`` positions ``first .. first + count - 1``.

    A slider for up to :data:`MAX_SLIDER_VALUES` values; above that a number box (type a value, or
    step with the arrow keys), which every screen can set exactly.
    """
    if count < 1:
        raise ValueError(f"{description}: need at least one position to pick from, got {count}")
    hi = first + count - 1
    if not first <= value <= hi:
        raise ValueError(f"{description}: value {value} is outside {first}..{hi}")
    kwargs = {"value": value, "min": first, "max": hi, "description": description}
    if count > MAX_SLIDER_VALUES:
        return widgets.BoundedIntText(layout=widgets.Layout(width=width or "170px"), **kwargs)
    control = widgets.IntSlider(continuous_update=False, **kwargs)
    if width:
        control.layout.width = width
    return control


def single_valued(control: widgets.Widget) -> bool:
    """True for a control that can take one value only (a ``0..0`` slider, a one-option menu)."""
    if hasattr(control, "options"):
        return len(control.options) <= 1
    lo, hi = getattr(control, "min", None), getattr(control, "max", None)
    if isinstance(control, widgets.Text) or lo is None or hi is None:
        return False
    return lo >= hi


def _fit(control: widgets.Widget) -> None:
    """Keep a control at its own width in a wrapping row, with its whole description readable.

    A slider sends its value when it is let go (or per key press), a text box on Enter, not at
    every step of a drag or every keystroke: each value is a redraw of 30-100 ms, and a drag's
    dozens of values would queue in the kernel, the figure lagging behind the slider for seconds.
    """
    if hasattr(control, "continuous_update"):
        control.continuous_update = False
    if control.layout.flex is None:
        control.layout.flex = "0 0 auto"  # never shrink (a squeezed slider track reads as NaN)
    style = getattr(control, "style", None)
    if style is not None and hasattr(style, "description_width") and not style.description_width:
        style.description_width = "initial"  # as wide as the text ("decoder step" is not cut)
    if isinstance(control, widgets.Checkbox):
        control.indent = False


def _show_if_useful(control: widgets.Widget) -> None:
    """Hide a single-valued control; show it again when it gains values (if it hid it)."""
    if single_valued(control):
        if control.layout.display != "none":
            control.layout.display = "none"
            control._hidden_as_single = True
    elif getattr(control, "_hidden_as_single", False):
        control.layout.display = None
        control._hidden_as_single = False


class FigureExplorer(widgets.VBox):
    """Controls plus one figure that is redrawn whenever a control's value changes.

    Args:
        draw: a :class:`View` (built once, updated per change), or a function
            ``draw(fig, **values)`` that draws into the figure; ``values`` maps each control's name
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
        >>> ex  # doctest: +SKIP
        <the last value of a cell shows the live widget, or its PNG>
    """

    def __init__(
        self,
        draw: View | DrawFn,
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
        self.view: View = draw if isinstance(draw, View) else _DrawView(draw, clear)
        self._built = False
        self.controls = dict(controls)
        if layout in (None, "none"):  # no engine at all (even a placeholder costs a second draw)
            with mpl.rc_context(NO_AUTO_LAYOUT):
                self.figure: Figure = CourseFigure(figsize=figsize, layout=None)
        else:
            self.figure = CourseFigure(figsize=figsize, layout=layout)
        width_px = round(figsize[0] * DPI)  # the figure's own size in CSS pixels
        # Own width, shrink only on narrow outputs (max-width), height follows the aspect ratio.
        self.image = widgets.Image(
            format="png",
            layout=widgets.Layout(width=f"{width_px}px", max_width="100%", height="auto"),
        )
        self.error = widgets.HTML()
        self.redraw_seconds: list[float] = []
        self.redraw_cpu_seconds: list[float] = []
        children: list[widgets.Widget] = []
        if title:
            children.append(widgets.HTML(f"<b>{title}</b>"))
        for control in self.controls.values():
            _fit(control)
            _show_if_useful(control)
            control.observe(lambda change: _show_if_useful(change["owner"]), names=["min", "max"])
            if hasattr(control, "options"):
                control.observe(lambda change: _show_if_useful(change["owner"]), names="options")
        self.control_box = widgets.Box(
            list(self.controls.values()),
            layout=widgets.Layout(
                display="flex", flex_flow="row wrap", align_items="center", max_width="100%"
            ),
        )
        children += [self.control_box, self.error, self.image]
        super().__init__(children, layout=widgets.Layout(max_width="100%"))
        # names for the page (the browser test finds every explorer, its controls and its image)
        self.add_class("course-explorer")
        self.control_box.add_class("course-explorer-controls")
        self.image.add_class("course-explorer-image")
        self._held = 0
        self._pending = False
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.redraw()

    @property
    def values(self) -> dict[str, Any]:
        """The controls' current values, by name."""
        return {name: control.value for name, control in self.controls.items()}

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Change several controls at once with one redraw at the end (none if nothing changed).

        For controls that follow each other, e.g. picking a sentence clears a typed one.
        """
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
            if not self._held and self._pending:
                self._pending = False
                self._on_change({})

    def redraw(self) -> None:
        """Draw the figure for the current values and show it (an error is shown, not raised)."""
        start, start_cpu = time.perf_counter(), time.process_time()
        try:
            with course_style():
                if not self._built:
                    self.figure.clear()
                    self.view.build(self.figure)
                    self._built = True
                self.view.update(self.figure, **self.values)
            self.error.value = ""
        except Exception as exc:  # show the learner what went wrong instead of a silent widget
            self.error.value = f"<span style='color:#b00'>Cannot draw this view: {exc}</span>"
            self.figure.clear()
            self._built = False
            raise
        finally:
            self.image.value = figure_to_png(self.figure, DPI * HIDPI_SCALE, fast=True)
            self.redraw_seconds.append(time.perf_counter() - start)
            self.redraw_cpu_seconds.append(time.process_time() - start_cpu)

    def _on_change(self, _change: dict) -> None:
        if self._held:
            self._pending = True
            return
        try:
            self.redraw()
        except Exception:  # already shown in self.error; a callback must not kill the widget
            pass

    def static_png(self) -> bytes:
        """The figure as it is now, as PNG bytes (``HIDPI_SCALE`` pixels per CSS pixel)."""
        return bytes(self.image.value)

    @property
    def display_size(self) -> tuple[int, int]:
        """``(width, height)`` in CSS pixels at which the figure is shown (its own size)."""
        w, h = self.figure.get_size_inches()
        return round(w * DPI), round(h * DPI)

    def save(self, path: str) -> None:
        """Save the current view (``.png`` at the shown resolution, ``.svg``, ``.pdf``)."""
        from pathlib import Path

        suffix = Path(path).suffix.lower()
        if suffix == ".png":
            Path(path).write_bytes(figure_to_png(self.figure, DPI * HIDPI_SCALE))
        elif suffix in (".svg", ".pdf"):
            with (
                mpl.rc_context(NO_AUTO_LAYOUT)
                if self.figure.get_layout_engine() is None
                else (contextlib.nullcontext())
            ):
                self.figure.savefig(path, facecolor="white")
        else:
            raise ValueError(f"save as .png, .svg or .pdf, got {path!r}")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
        if data is None:
            return bundle
        data["image/png"] = base64.b64encode(self.static_png()).decode("ascii")
        # the static view at the figure's own size, as the live one (its PNG has 2x the pixels)
        metadata = dict(metadata or {})
        metadata["image/png"] = dict(zip(("width", "height"), self.display_size, strict=True))
        return data, metadata
