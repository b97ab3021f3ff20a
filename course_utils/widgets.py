"""Explorer widgets: controls that redraw one reused figure, shown at once in the browser.

Every interactive figure in the course is a :class:`FigureExplorer`: the one way to build an explorer.
It keeps one matplotlib figure and redraws it when a control moves. Its image is a small anywidget
(``explorer.js``, inline: nothing is fetched) that keeps every frame it got, keyed by the controls'
values: a change to values seen before, or to the neighbours the kernel renders ahead while a page
shows the explorer, shows its frame at once, without waiting for the kernel. Its notebook output
also carries the first PNG as a plain ``image/png``, so the figure reads on GitHub and in any viewer
without a kernel, and ``save("view.html")`` writes one file whose controls work with no Python.

How it looks the same everywhere (JupyterLab, Voila, a saved file, any screen):

- The PNG is rendered at :data:`~course_utils.style.HIDPI_SCALE` times the figure's resolution and
  shown at the figure's own size (``figsize * DPI`` CSS pixels), so text stays sharp on high-DPI
  screens. The image is never enlarged; on an output narrower than the figure it shrinks to fit.
- Controls sit in a box that wraps onto more lines (they never squeeze each other's tracks), their
  descriptions get the width they need, and a control with a single value (a slider ``0..0``, a
  one-option dropdown) is hidden: it would do nothing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import html
import itertools
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets as widgets
import matplotlib as mpl
import numpy as np
import traitlets
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

    #: The controls a saved HTML file keeps working first (thinned to fit its frame budget);
    #: the others stay free only while the budget allows, else fixed at their current value.
    main_controls: tuple[str, ...] = ()

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


#: An explorer caches at most this many frames in the browser; past it both sides start again.
MAX_CACHED_FRAMES = 400
#: A menu (or toggle buttons) with at most this many options has every option prefetched.
PREFETCH_ALL_OPTIONS = 8
#: Seconds the kernel rests between two frames it renders ahead: time for its loop to take in a
#: control change (with no rest, ipykernel 7 runs 3-4 more callbacks before a waiting message).
PREFETCH_GAP_S = 0.02
#: Frames a saved HTML file holds by default (every combination of the controls it keeps free).
MAX_FILE_FRAMES = 120

_ESM = (Path(__file__).with_name("explorer.js")).read_text(encoding="utf-8")


def _thin(spec: dict, count: int) -> None:
    """Keep ``count`` evenly spread values of a saved file's control (and its current one)."""
    n = len(spec["states"])
    keep = sorted(
        {round(j * (n - 1) / (count - 1)) for j in range(count)} if count > 1 else set()
    ) if n > count else list(range(n))  # fmt: skip
    keep = sorted(set(keep) | {spec["current"]})
    spec["current"] = keep.index(spec["current"])
    spec["states"] = [spec["states"][j] for j in keep]
    spec["labels"] = [spec["labels"][j] for j in keep]
    if len(keep) < n:
        spec["note"] = f"{len(keep)} of its {n} values in this file"


def _distance(a: Any, b: Any) -> float:
    """How far a control's value ``a`` is from ``b`` (0 when equal; for snapping to a grid)."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b)
    return 0.0 if a == b else 1.0


_HTML_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; font-size: 14px; margin: 16px; }}
.course-controls {{ display: flex; flex-wrap: wrap; gap: 6px 18px; align-items: center; }}
.course-control small {{ color: #666; }}
.course-file img {{ display: block; width: {width}px; max-width: 100%; height: auto; }}
</style></head>
<body><div class="course-file">
<b>{title}</b>
<div class="course-controls"></div>
<p class="course-missing" hidden>This combination could not be drawn.</p>
<img alt="the explorer's figure">
</div>
<script type="application/json" id="course-explorer-data">{data}</script>
<script type="module">
{esm}
renderFile(document.querySelector(".course-file"),
           JSON.parse(document.getElementById("course-explorer-data").textContent));
</script>
</body></html>
"""


def _norm(value: Any) -> Any:
    """A control's value as it appears in a frame key (explorer.js ``norm`` builds the same)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, np.integer, np.floating)):
        return math.floor(float(value) * 1e6 + 0.5)
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    return str(value)


class _Frames(anywidget.AnyWidget):
    """The explorer's image in the browser, with a frame cache (``explorer.js``).

    Before a page shows it (a run without a browser, or the first view), the current frame travels
    in ``frame`` like an ``ipywidgets.Image``. Once a page says it is ready, frames go as messages,
    each at most once: the page shows a cached frame the moment a control changes.
    """

    _esm = _ESM
    controls = traitlets.List(traitlets.Instance(widgets.Widget)).tag(
        sync=True, **widgets.widget_serialization
    )
    #: per control, the synced value the key reads ("index" for menus, "value" otherwise)
    fields = traitlets.List(traitlets.Unicode()).tag(sync=True)
    frame = traitlets.Bytes(b"").tag(sync=True)
    key = traitlets.Unicode("").tag(sync=True)

    def __repr__(self) -> str:  # the same text on every run (no object address)
        return "ExplorerImage()"


class FigureExplorer(widgets.VBox):
    """Controls plus one figure that is redrawn whenever a control's value changes.

    The kernel redraws on every change (so :attr:`figure` is always the current view), and the
    browser keeps every frame it got: going back to values seen before, or to the neighbours the
    kernel renders ahead while a page shows the explorer (each slider one step either way, every
    option of a short menu), shows the frame at once, with no round trip to the kernel.

    Args:
        draw: a :class:`View` (built once, updated per change), or a function
            ``draw(fig, **values)`` that draws into the figure; ``values`` maps each control's name
            to its current value. The picture must depend on the values only (frames are cached
            by them); after changing anything else, call :meth:`redraw`.
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
        frames_sent: ``(key, bytes, prefetched)`` of every frame sent to a page, for benchmarks.

    Example:
        >>> ex = FigureExplorer(lambda fig, k: fig.add_subplot().plot(range(k)),
        ...                     {"k": widgets.IntSlider(value=3, min=1, max=9)})
        >>> ex.values
        {'k': 3}
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
        self.title = title
        if layout in (None, "none"):  # no engine at all (even a placeholder costs a second draw)
            with mpl.rc_context(NO_AUTO_LAYOUT):
                self._figure: Figure = CourseFigure(figsize=figsize, layout=None)
        else:
            self._figure = CourseFigure(figsize=figsize, layout=layout)
        width_px = round(figsize[0] * DPI)  # the figure's own size in CSS pixels
        self._fields = ["index" if "index" in c.keys else "value" for c in self.controls.values()]
        # Own width, shrink only on narrow outputs (max-width), height follows the aspect ratio.
        self.image = _Frames(
            controls=list(self.controls.values()),
            fields=self._fields,
            layout=widgets.Layout(width=f"{width_px}px", max_width="100%", height="auto"),
        )
        self.image.on_msg(self._on_page_msg)
        self.error = widgets.HTML()
        self.redraw_seconds: list[float] = []
        self.redraw_cpu_seconds: list[float] = []
        self.frames_sent: list[tuple[str, int, bool]] = []
        self._png = b""  # the current frame
        self._shown: tuple | None = None  # the state the figure shows (a prefetch moves it)
        self._live = False  # a page shows the explorer and keeps the frames it gets
        self._sent: set[str] = set()  # keys of the frames that page has
        self._queue: list[tuple] = []  # states to render ahead, most likely first
        self._generation = 0  # a change makes the queued prefetch of earlier values stale
        self._last_change: tuple[int, int] = (0, 1)  # (control, direction) of the last change
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
        for k, control in enumerate(self.controls.values()):
            control.observe(lambda change, k=k: self._on_change(change, k), names="value")
        self.redraw()

    @property
    def values(self) -> dict[str, Any]:
        """The controls' current values, by name."""
        return {name: control.value for name, control in self.controls.items()}

    @property
    def figure(self) -> Figure:
        """The reused figure, showing the controls' current values."""
        state = self._state()
        if self._shown != state:  # a frame rendered ahead (or a saved file's) moved it
            try:
                self._render(state, png=False)
            except Exception:  # as after a failed redraw: the cleared figure (see self.error)
                self._figure.clear()
                self._built = False
        return self._figure

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
                self._on_change({}, None)

    def redraw(self) -> None:
        """Draw the figure for the current values and show it (an error is shown, not raised).

        Call it after changing what the view draws from (its data, a label function): frames the
        page keeps for other values are dropped, since they show the old data.
        """
        self._generation += 1
        self._queue = []
        if self._live and self._sent:
            self._sent.clear()
            self.image.send({"type": "clear"})
        self._show()

    # -- states: the controls' synced values (a menu's index, a slider's value) -------------------

    def _state(self) -> tuple:
        return tuple(
            getattr(c, f) for c, f in zip(self.controls.values(), self._fields, strict=True)
        )

    def _key(self, state: tuple) -> str:
        return json.dumps([_norm(v) for v in state], separators=(",", ":"), ensure_ascii=False)

    def _values(self, state: tuple) -> dict[str, Any]:
        values = {}
        for (name, control), field, raw in zip(
            self.controls.items(), self._fields, state, strict=True
        ):
            if field == "index":
                options = control._options_values
                values[name] = (
                    None
                    if raw is None
                    else tuple(options[i] for i in raw)
                    if isinstance(raw, tuple)
                    else options[raw]
                )
            else:
                values[name] = raw
        return values

    def _render(self, state: tuple, *, small: bool = False, png: bool = True) -> bytes:
        """The figure for ``state``, as the PNG the page shows (the figure keeps it).

        ``small``: the smallest lossless PNG (slower; for a saved file's many frames); ``png=False``:
        only draw (returns ``b""``).
        """
        with course_style():
            if not self._built:
                self._figure.clear()
                self.view.build(self._figure)
                self._built = True
            self.view.update(self._figure, **self._values(state))
        self._shown = state
        return (
            figure_to_png(self._figure, DPI * HIDPI_SCALE, fast=True, small=small) if png else b""
        )

    def _show(self) -> None:
        """Render the current values, send the frame if the page lacks it, render ahead."""
        start, start_cpu = time.perf_counter(), time.process_time()
        state = self._state()
        try:
            self._png = self._render(state)
            self.error.value = ""
        except Exception as exc:  # show the learner what went wrong instead of a silent widget
            self.error.value = f"<span style='color:#b00'>Cannot draw this view: {exc}</span>"
            self._figure.clear()
            self._built = False
            self._shown = None
            self._png = figure_to_png(self._figure, DPI * HIDPI_SCALE, fast=True)
            raise
        finally:
            self.redraw_seconds.append(time.perf_counter() - start)
            self.redraw_cpu_seconds.append(time.process_time() - start_cpu)
            if not self._live:  # no page keeps frames yet: the frame travels as the state
                with self.image.hold_sync():
                    self.image.frame, self.image.key = self._png, self._key(state)
            else:
                self._offer_current()

    def _offer_current(self) -> None:
        """Send the current frame if the page lacks it; queue the neighbours to render ahead."""
        key = self._key(self._state())
        self._plan_prefetch()  # first: the frame's message says how many follow
        if key not in self._sent:
            self._send_frame(key, self._png, prefetched=False)
        else:  # the page shows it already; say how many follow (the browser test waits for 0)
            self.image.send({"type": "pending", "pending": len(self._queue), "now": key})

    def _on_change(self, change: dict, k: int | None) -> None:
        if k is not None and isinstance(change.get("new"), (int, float)):
            old = change.get("old")
            up = not isinstance(old, (int, float)) or change["new"] >= old
            self._last_change = (k, 1 if up else -1)
        if self._held:
            self._pending = True
            return
        self._generation += 1
        try:
            self._show()
        except Exception:  # already shown in self.error; a callback must not kill the widget
            pass

    # -- the page: frames sent once, frames rendered ahead ----------------------------------------

    def _send_frame(self, key: str, png: bytes, *, prefetched: bool) -> None:
        if len(self._sent) >= MAX_CACHED_FRAMES:
            self._sent.clear()
            self.image.send({"type": "clear"})
        self._sent.add(key)
        self.frames_sent.append((key, len(png), prefetched))
        msg = {
            "type": "frame",
            "key": key,
            "current": not prefetched,
            "pending": len(self._queue),
            "now": self._key(self._state()),
        }
        self.image.send(msg, buffers=[png])

    def _on_page_msg(self, _widget: Any, content: dict, _buffers: list) -> None:
        kind = content.get("type")
        key = self._key(self._state())
        if kind == "ready":  # a page shows the explorer: it has these frames, no others
            self._live = True
            self._sent = set(content.get("keys") or ())
            self._generation += 1
            if self._png:
                self._offer_current()
        elif kind == "want" and content.get("key") == key and self._png:
            self._send_frame(key, self._png, prefetched=False)

    def _neighbours(self, state: tuple) -> list[tuple]:
        """States one step from ``state``, most likely first (the last moved control, onwards)."""
        last, direction = self._last_change
        order = sorted(range(len(state)), key=lambda k: k != last)
        out: list[tuple] = []
        for k in order:
            control, raw = list(self.controls.values())[k], state[k]
            if single_valued(control) or control.layout.display == "none":
                continue
            if self._fields[k] == "index":
                if isinstance(raw, tuple):
                    continue
                n, i = len(control.options), raw if raw is not None else -1
                near = sorted((j for j in range(n) if j != i), key=lambda j: (abs(j - i), j < i))
                choices = near if n <= PREFETCH_ALL_OPTIONS else near[:2]
            elif isinstance(raw, bool):
                choices = [not raw]
            elif isinstance(raw, (int, float)) and getattr(control, "max", None) is not None:
                step = getattr(control, "step", None) or 1
                steps = (direction, -direction) if k == last else (1, -1)
                choices = [raw + s * step for s in steps]
                if isinstance(raw, float):  # the browser's slider snaps to min + j * step
                    j = round((raw - control.min) / step)
                    on_grid = [control.min + (j + s) * step for s in steps]
                    choices += [v for v in on_grid if _norm(v) not in {_norm(c) for c in choices}]
                choices = [v for v in choices if control.min <= v <= control.max]
            else:
                continue
            out += [state[:k] + (c,) + state[k + 1 :] for c in choices]
        return out

    def _plan_prefetch(self) -> None:
        """Queue the neighbours of the current values; render them one at a time, in between."""
        self._queue = [s for s in self._neighbours(self._state()) if self._key(s) not in self._sent]
        if not self._queue:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a script): nothing renders ahead
            self._queue = []
            return
        loop.call_later(PREFETCH_GAP_S, self._prefetch_one, self._generation)

    def _prefetch_one(self, generation: int) -> None:
        """Render and send one queued frame, then yield to the kernel (a real change comes first)."""
        if generation != self._generation or not self._queue:
            return
        state = self._queue.pop(0)
        key = self._key(state)
        if key not in self._sent:
            try:
                png = self._render(state)
            except Exception:  # that neighbour cannot be drawn: the page will ask if it goes there
                self._figure.clear()
                self._built = False
                self._shown = None
            else:
                self._send_frame(key, png, prefetched=True)
        if self._queue:
            asyncio.get_running_loop().call_later(PREFETCH_GAP_S, self._prefetch_one, generation)
        else:
            self.image.send({"type": "idle", "pending": 0, "now": self._key(self._state())})

    def prefetch_now(self) -> int:
        """Render ahead at once, as a page's idle kernel does (benchmarks); the frames rendered."""
        self._live = True
        queue = [s for s in self._neighbours(self._state()) if self._key(s) not in self._sent]
        for state in queue:
            self._send_frame(self._key(state), self._render(state), prefetched=True)
        return len(queue)

    # -- static views ------------------------------------------------------------------------------

    def static_png(self) -> bytes:
        """The figure as it is now, as PNG bytes (``HIDPI_SCALE`` pixels per CSS pixel)."""
        return bytes(self._png)

    @property
    def display_size(self) -> tuple[int, int]:
        """``(width, height)`` in CSS pixels at which the figure is shown (its own size)."""
        w, h = self._figure.get_size_inches()
        return round(w * DPI), round(h * DPI)

    def save(self, path: str | Path, *, max_frames: int = MAX_FILE_FRAMES) -> Path:
        """Save the view: ``.png`` (shown resolution), ``.svg``, ``.pdf``, or ``.html``.

        An ``.html`` file is one self-contained page whose controls work with no Python: it holds
        the frames of every combination of the controls' values up to ``max_frames``; controls
        left out stay at their current value, shown disabled ("fixed in this file").
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".html":
            path.write_text(self._html(max_frames), encoding="utf-8")
        elif suffix == ".png":
            path.write_bytes(figure_to_png(self.figure, DPI * HIDPI_SCALE))
        elif suffix in (".svg", ".pdf"):
            fig = self.figure
            with (
                mpl.rc_context(NO_AUTO_LAYOUT)
                if fig.get_layout_engine() is None
                else (contextlib.nullcontext())
            ):
                fig.savefig(path, facecolor="white")
        else:
            raise ValueError(f"save as .html, .png, .svg or .pdf, got {str(path)!r}")
        return path

    def _file_controls(self, max_frames: int) -> list[dict]:
        """The controls of a saved file: which stay free (all their values) within the budget."""
        specs = []
        for k, (name, control) in enumerate(self.controls.items()):
            raw, field = self._state()[k], self._fields[k]
            spec = {"name": name, "description": control.description or name, "fixed": True}
            if field == "index" and not isinstance(raw, tuple) and control.options:
                spec |= {"kind": "select", "states": list(range(len(control.options)))}
                spec["labels"] = [str(label) for label in control._options_labels]
            elif isinstance(raw, bool):
                spec |= {"kind": "checkbox", "states": [False, True], "labels": ["off", "on"]}
            elif isinstance(raw, (int, float)) and getattr(control, "max", None) is not None:
                step = getattr(control, "step", None) or 1
                count = math.floor((control.max - control.min) / step + 1e-9) + 1
                grid = [control.min + j * step for j in range(count)]
                grid = [round(v) if isinstance(raw, int) else v for v in grid]
                spec |= {"kind": "range", "states": grid, "labels": [f"{v:g}" for v in grid]}
            else:  # a text box: what it holds now
                spec |= {"kind": "select", "states": [raw], "labels": [str(raw)]}
            states = spec["states"]
            spec["current"] = min(range(len(states)), key=lambda j: _distance(states[j], raw))
            spec["states"][spec["current"]] = raw  # exactly the value shown now
            spec["hidden"] = control.layout.display == "none" or single_valued(control)
            specs.append(spec)
        budget = max(1, max_frames)
        movable = [s for s in specs if not s["hidden"] and len(s["states"]) > 1]
        # the view's main controls first (View.main_controls), each thinned to an even share
        main = [s for name in getattr(self.view, "main_controls", ()) for s in movable
                if s["name"] == name]  # fmt: skip
        for k, spec in enumerate(main):
            share = max(2, math.floor(budget ** (1 / (len(main) - k)) + 1e-9))
            if budget < 2:
                break
            if len(spec["states"]) > share:
                _thin(spec, share)
            spec["fixed"] = False
            budget //= len(spec["states"])
        for spec in sorted(movable, key=lambda s: len(s["states"])):
            if spec["fixed"] and spec not in main and len(spec["states"]) <= budget:
                spec["fixed"] = False
                budget //= len(spec["states"])
        if not any(not s["fixed"] for s in specs) and movable:  # one long slider: every k-th value
            spec = min(movable, key=lambda s: len(s["states"]))
            _thin(spec, max(1, max_frames))
            spec["fixed"] = False
        return specs

    def _html(self, max_frames: int) -> str:
        """One page with the controls, every frame inline and explorer.js's ``renderFile``."""
        specs = self._file_controls(max_frames)
        free = [s for s in specs if not s["fixed"]]
        current = list(self._state())
        frames = {}
        for picks in itertools.product(*(range(len(s["states"])) for s in free)):
            state = list(current)
            for spec, j in zip(free, picks, strict=True):
                state[specs.index(spec)] = spec["states"][j]
            try:
                png = self._render(tuple(state), small=True)
            except Exception:  # that combination cannot be drawn: the file says so there
                self._figure.clear()
                self._built, self._shown = False, None
                continue
            data = base64.b64encode(png).decode("ascii")
            frames[",".join(map(str, picks))] = f"data:image/png;base64,{data}"
        controls = [
            {k: s[k] for k in ("name", "description", "kind", "note") if k in s}
            | (
                {"labels": [s["labels"][s["current"]]], "current": 0, "fixed": True}
                if s["fixed"]
                else {"labels": s["labels"], "current": s["current"], "fixed": False}
            )
            for s in specs
            if not s["hidden"]
        ]
        payload = json.dumps({"controls": controls, "frames": frames}).replace("</", "<\\/")
        width, _ = self.display_size
        title = html.escape(self.title or "course explorer")
        esm = _ESM.replace("</script", "<\\/script")
        return _HTML_PAGE.format(title=title, width=width, data=payload, esm=esm)

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
