"""Course figures and explorer widgets: labelled, one colour scale, static first view, redraws."""

from __future__ import annotations

import base64
import json

import ipywidgets as widgets
import numpy as np
import pytest
import torch

from course_utils import envcheck, plots, style
from course_utils.widgets import FigureExplorer

PNG_MAGIC = b"\x89PNG"


def test_new_figure_is_pyplot_free_and_renders_png():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig, axes = style.new_figure(2, 3)
    assert axes.shape == (2, 3)
    assert plt.get_fignums() == before  # not tracked by pyplot: no double display, no leak
    assert fig._repr_png_().startswith(PNG_MAGIC)
    with pytest.raises(ValueError, match="at least one row"):
        style.new_figure(0, 1)


def test_heatmap_labels_and_validates():
    fig = plots.heatmap(
        torch.rand(3, 4),
        x_labels=list("abcd"),
        y_labels=["x", "y", "z"],
        xlabel="key",
        ylabel="query",
        title="t",
    )
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list("abcd")
    assert ax.get_xlabel() == "key" and ax.get_ylabel() == "query"
    assert len(fig.axes) == 2  # the heatmap and its colour bar
    with pytest.raises(ValueError, match="x_labels has 3 entries"):
        plots.heatmap(np.zeros((2, 4)), x_labels=list("abc"))
    with pytest.raises(ValueError, match="2-D matrix"):
        plots.heatmap(np.zeros(4))


def test_heatmap_grid_shares_one_colour_scale():
    mats = [np.full((2, 2), 0.1), np.full((2, 2), 0.9), np.eye(2)]
    fig = plots.heatmap_grid(mats, ncols=2, titles=["a", "b", "c"], x_labels=["p", "q"])
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 3
    assert {(im.norm.vmin, im.norm.vmax) for im in images} == {(0.0, 1.0)}
    assert sum(1 for ax in fig.axes if not ax.axison) == 1  # the unused fourth panel is hidden


def test_shared_norm_signed_is_symmetric():
    norm = plots.shared_norm([np.array([-0.5, 0.2]), np.array([2.0])], signed=True)
    assert (norm.vmin, norm.vcenter, norm.vmax) == (-2.0, 0.0, 2.0)
    with pytest.raises(ValueError, match="non-empty"):
        plots.shared_norm([])


def _explorer():
    def draw(fig, k, label):
        ax = fig.add_subplot()
        ax.plot(range(k))
        ax.set_title(f"{label} {k}")

    return FigureExplorer(
        draw, {"k": widgets.IntSlider(value=3, min=1, max=9), "label": widgets.Text(value="n =")}
    )


def test_explorer_first_view_is_also_a_static_png():
    ex = _explorer()
    bundle, metadata = ex._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    png = base64.b64decode(bundle["image/png"])
    assert png.startswith(PNG_MAGIC)
    assert ex.figure.axes[0].get_title() == "n = 3"
    # rendered at HIDPI_SCALE x the figure's pixels, shown at the figure's own size (never larger)
    width = int.from_bytes(png[16:20], "big")
    assert metadata["image/png"]["width"] == ex.display_size[0] == round(7.0 * style.DPI)
    assert width == style.HIDPI_SCALE * ex.display_size[0]
    assert ex.image.layout.width == f"{ex.display_size[0]}px"
    assert ex.image.layout.max_width == "100%"  # shrinks on narrow outputs, never grows


def test_explorer_redraws_one_figure_when_a_control_moves():
    ex = _explorer()
    first_png, fig = ex.static_png(), ex.figure
    ex.controls["k"].value = 7
    assert ex.figure is fig and len(fig.axes) == 1  # reused and cleared, not stacked
    assert ex.figure.axes[0].get_title() == "n = 7"
    assert ex.static_png() != first_png
    assert len(ex.redraw_seconds) == 2


def test_explorer_shows_drawing_errors_instead_of_dying():
    def draw(fig, k):
        if k > 2:
            raise ValueError("k too large for this demo")
        fig.add_subplot().plot([0, k])

    ex = FigureExplorer(draw, {"k": widgets.IntSlider(value=1, min=0, max=5)})
    ex.controls["k"].value = 4
    assert "k too large" in ex.error.value
    ex.controls["k"].value = 2
    assert ex.error.value == ""
    with pytest.raises(ValueError, match="at least one control"):
        FigureExplorer(draw, {})


def test_envcheck_passes_here_and_flags_a_wrong_pin(capsys):
    results = envcheck.run_checks("0.1.0")
    assert all(r.ok for r in results), [str(r) for r in results if not r.ok]
    assert "checks passed. You are ready." in capsys.readouterr().out
    wrong = envcheck.check_packages({"torch": "99.0.0", "surely-not-installed-pkg": "1.0"})
    assert not any(r.ok for r in wrong)
    assert "fix: run `make setup`" in str(wrong[0])
    assert not envcheck.check_course_utils("9.9.9").ok


def test_explorer_without_clearing_updates_artists_in_place():
    def draw(fig, k):
        if not fig.axes:  # first call: build the axes once
            ax = fig.add_subplot()
            ax.plot([0, 1], [0, 0])
            ax.set_ylim(0, 10)
        fig.axes[0].lines[0].set_ydata([k, k])

    ex = FigureExplorer(draw, {"k": widgets.IntSlider(value=1, min=0, max=9)}, clear=False)
    line, first = ex.figure.axes[0].lines[0], ex.static_png()
    ex.controls["k"].value = 5
    assert ex.figure.axes[0].lines[0] is line and list(line.get_ydata()) == [5, 5]
    assert ex.static_png() != first
    assert len(ex.redraw_cpu_seconds) == len(ex.redraw_seconds) == 2


def test_explorer_without_layout_engine_stays_without_one_and_draws_once():
    from unittest import mock

    with style.course_style():  # the style turns constrained layout on for new figures
        ex = FigureExplorer(
            lambda fig, k: fig.add_subplot().plot([0, k]),
            {"k": widgets.IntSlider(value=1, min=0, max=5)},
            layout=None,
        )
        with mock.patch.object(ex.figure, "draw", wraps=ex.figure.draw) as draw:
            ex.controls["k"].value = 3
            ex.controls["k"].value = 4
    assert ex.figure.get_layout_engine() is None
    assert draw.call_count == 2  # one draw per redraw, no extra layout pass


def test_explorer_hides_single_valued_controls_and_wraps_its_controls():
    ex = FigureExplorer(
        lambda fig, a, b, c: fig.add_subplot().plot([a, b]),
        {
            "a": widgets.IntSlider(value=0, min=0, max=0),
            "b": widgets.IntSlider(value=0, min=0, max=3, description="decoder step"),
            "c": widgets.Dropdown(options=["only"]),
        },
    )
    a, b, c = ex.controls.values()
    assert a.layout.display == "none" and c.layout.display == "none"
    assert b.layout.display is None
    assert b.style.description_width == "initial"  # the whole label, not cut at 80 px
    assert ex.control_box.layout.flex_flow == "row wrap"
    assert b.layout.flex == "0 0 auto"  # never squeezed by its neighbours
    a.max = 2  # a control that gains values is shown again
    assert a.layout.display is None


def test_explorer_hold_redraws_once():
    ex = _explorer()
    n = len(ex.redraw_seconds)
    with ex.hold():
        ex.controls["k"].value = 5
        ex.controls["label"].value = "m ="
    assert len(ex.redraw_seconds) == n + 1
    assert ex.figure.axes[0].get_title() == "m = 5"


def test_index_control_uses_a_number_box_for_long_ranges(tmp_path):
    from course_utils.widgets import MAX_SLIDER_VALUES, index_control

    assert isinstance(index_control("example", 10), widgets.IntSlider)
    box = index_control("example", 256, 3)
    assert isinstance(box, widgets.BoundedIntText) and (box.min, box.max, box.value) == (0, 255, 3)
    assert isinstance(index_control("x", MAX_SLIDER_VALUES), widgets.IntSlider)
    with pytest.raises(ValueError, match="outside"):
        index_control("example", 4, 9)


def test_explorer_saves_png_and_svg(tmp_path):
    ex = _explorer()
    ex.save(str(tmp_path / "v.png"))
    ex.save(str(tmp_path / "v.svg"))
    assert (tmp_path / "v.png").read_bytes().startswith(PNG_MAGIC)
    assert b"<svg" in (tmp_path / "v.svg").read_bytes()[:400]
    with pytest.raises(ValueError, match=".html, .png, .svg"):
        ex.save(str(tmp_path / "v.gif"))


def test_fast_png_has_the_pixels_of_savefig_and_keeps_transparency():
    import io

    from PIL import Image

    fig, ax = style.new_figure()
    ax.imshow(np.arange(12.0).reshape(3, 4))
    ax.set_title("sharp text")

    def pixels(png: bytes) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))

    fast = style.figure_to_png(fig, style.DPI * 2, fast=True)
    slow = style.figure_to_png(fig, style.DPI * 2)
    assert fast.startswith(b"\x89PNG") and pixels(fast).shape == pixels(slow).shape
    assert (pixels(fast) == pixels(slow)).all()  # lossless, same draw: not softer
    assert Image.open(io.BytesIO(fast)).mode == "RGB"  # opaque figure: no alpha channel sent
    rgba = np.random.default_rng(0).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    back = np.asarray(Image.open(io.BytesIO(style.rgba_to_png(rgba))))
    assert back.shape == (5, 7, 4) and (back == rgba).all()
    with pytest.raises(ValueError, match="uint8"):
        style.rgba_to_png(np.zeros((5, 7, 3)))


def test_explorer_sliders_send_their_value_when_let_go():
    ex = FigureExplorer(
        lambda fig, k, s: fig.add_subplot().plot([0, k]),
        {"k": widgets.IntSlider(value=1, min=0, max=5), "s": widgets.Text(value="x")},
    )
    # a drag would otherwise queue one redraw per step it passes
    assert not ex.controls["k"].continuous_update and not ex.controls["s"].continuous_update


def _paged(ex):
    """``ex`` as a page that has just shown it sees it: the messages the kernel sends it."""
    sent = []
    ex.image.send = lambda msg, buffers=None: sent.append((msg, buffers))
    ex._on_page_msg(ex.image, {"type": "ready", "keys": []}, [])
    return sent


def test_explorer_sends_each_frame_once_and_renders_the_neighbours_ahead():
    ex = FigureExplorer(
        lambda fig, k, label, on: fig.add_subplot().set_title(f"{label} {k} {on}"),
        {
            "k": widgets.IntSlider(value=3, min=1, max=9),
            "label": widgets.Dropdown(options=["a", "b", "c"], value="a"),
            "on": widgets.Checkbox(value=False),
        },
    )
    assert ex.image.frame == ex.static_png()  # no page yet: the frame travels as state
    sent = _paged(ex)
    assert [m["key"] for m, _ in sent] == [ex._key(ex._state())] == ["[3000000,0,false]"]
    assert sent[0][1][0] == ex.static_png()
    assert ex.prefetch_now() == 5  # k 4 and 2, label b and c, on
    keys = [m["key"] for m, _ in sent if m["type"] == "frame"]
    assert (
        "[4000000,0,false]" in keys
        and "[3000000,2000000,false]" in keys
        and "[3000000,0,true]" in keys
    )
    assert ex.figure.axes[0].get_title() == "a 3 False"  # back at the current values
    n = len(sent)
    ex.controls["k"].value = 4  # the page has it: no frame sent, the kernel still redraws
    assert [m["type"] for m, _ in sent[n:]] == ["pending"]
    assert ex.figure.axes[0].get_title() == "a 4 False"
    ex.controls["label"].value = "b"  # not rendered ahead from k=3: sent
    key = "[4000000,1000000,false]"
    assert sent[-1][0] == {"type": "frame", "key": key, "current": True, "pending": 0, "now": key}
    ex.redraw()  # the data changed: the page drops its frames, the current one comes again
    assert sent[-2][0] == {"type": "clear"} and sent[-1][0]["key"] == key


def test_explorer_frame_keys_match_the_browser_rounding():
    ex = FigureExplorer(
        lambda fig, f: fig.add_subplot().plot([0, f]),
        {"f": widgets.FloatSlider(value=0.95, min=0.5, max=0.9995, step=0.005)},
    )
    assert ex._key((0.1 + 0.2,)) == ex._key((0.3,)) == "[300000]"  # JS: Math.floor(v * 1e6 + 0.5)
    _paged(ex)
    ex.prefetch_now()
    assert {k for k, _, pre in ex.frames_sent if pre} == {"[955000]", "[945000]"}


def test_explorer_saves_one_self_contained_html_file(tmp_path):
    ex = FigureExplorer(
        lambda fig, k, label, text: fig.add_subplot().set_title(f"{label} {k} {text}"),
        {
            "k": widgets.IntSlider(value=3, min=0, max=9, description="k"),
            "label": widgets.ToggleButtons(options=["a", "b"], value="b"),
            "text": widgets.Text(value="typed", description="sentence"),
        },
        title="demo",
    )
    path = ex.save(tmp_path / "view.html", max_frames=30)
    page = path.read_text()
    assert path == tmp_path / "view.html" and page.startswith("<!DOCTYPE html>")
    assert "http://" not in page and "https://" not in page  # nothing fetched, nothing linked
    data = json.loads(page.split('id="course-explorer-data">')[1].split("</script>")[0])
    assert len(data["frames"]) == 20  # 10 k x 2 labels; the text box is fixed
    fixed = {c["name"]: c["fixed"] for c in data["controls"]}
    assert fixed == {"k": False, "label": False, "text": True}
    assert "fixed in this file" in page and "renderFile(" in page
    assert ex.figure.axes[0].get_title() == "b 3 typed"  # the figure is back at the current view
    small = json.loads(
        ex.save(tmp_path / "small.html", max_frames=4)
        .read_text()
        .split('id="course-explorer-data">')[1]
        .split("</script>")[0]
    )
    assert len(small["frames"]) == 2  # the toggle only; the slider is fixed


def test_a_saved_file_keeps_the_views_main_controls_working_thinned_to_the_budget(tmp_path):
    from course_utils.widgets import View

    class Grid(View):
        main_controls = ("step", "unit")

        def update(self, fig, *, example, step, unit):
            fig.clear()
            fig.add_subplot().set_title(f"{example} {step} {unit}")

    ex = FigureExplorer(
        Grid(),
        {
            "example": widgets.IntSlider(value=0, min=0, max=3, description="example"),
            "step": widgets.IntSlider(value=5, min=0, max=39, description="step"),
            "unit": widgets.IntSlider(value=0, min=0, max=15, description="unit"),
        },
        layout=None,
    )
    page = ex.save(tmp_path / "grid.html", max_frames=60).read_text()
    data = json.loads(page.split('id="course-explorer-data">')[1].split("</script>")[0])
    controls = {c["name"]: c for c in data["controls"]}
    assert not controls["step"]["fixed"] and not controls["unit"]["fixed"]
    assert controls["example"]["fixed"]  # the budget went to the main controls
    assert "5" in controls["step"]["labels"]  # the value shown now is one of them
    assert "of its 40 values in this file" in controls["step"]["note"]
    assert 20 <= len(data["frames"]) <= 60
