"""A learner's session, in a real browser: JupyterLab opens a notebook (00, and 02 with the state
explorer), runs every cell, and a moved slider redraws the widget's figure. Driven by Playwright in
Debian's headless Chromium.

Needs ``/usr/bin/chromium`` (``apt-get install -y chromium``; ``.ci/run`` installs it). Playwright's
own browser download is not used (it cannot work offline).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.notebook_tools import NOTEBOOKS, ROOT

CHROMIUM = os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = ROOT / ".cache" / "browser-test"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(settings_dir: Path) -> None:
    """JupyterLab user settings for a test: render every cell (no windowing) and fetch no news."""
    notebook = settings_dir / "@jupyterlab" / "notebook-extension"
    notebook.mkdir(parents=True)
    # JupyterLab 4 leaves off-screen cells out of the page unless windowing is off.
    (notebook / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    apputils = settings_dir / "@jupyterlab" / "apputils-extension"
    apputils.mkdir(parents=True)
    (apputils / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install it with `apt-get install -y chromium`")
    tmp = tmp_path_factory.mktemp("lab")
    _write_settings(tmp / "settings")
    port, token = _free_port(), secrets.token_hex(16)
    env = os.environ | {
        "JUPYTERLAB_SETTINGS_DIR": str(tmp / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
    }
    log = open(tmp / "lab.log", "w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--notebook-dir={NOTEBOOKS}",
            "--allow-root",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"JupyterLab did not start:\n{(tmp / 'lab.log').read_text()[-3000:]}")
            time.sleep(0.5)
    yield base, token
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


# Runs in the page: the notebook model's outputs, via the app exposed as window.jupyterapp.
_CELL_STATE_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = panel.content.model.cells;
  const out = [];
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.type !== 'code') continue;
    const outputs = c.outputs.toJSON();
    out.push({count: c.executionCount,
              errors: outputs.filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue)});
  }
  return out;
}"""


# Runs in the page: mark the first slider that can still move right, and the figure of the
# explorer widget (a VBox holding controls and an image) that it belongs to.
_PICK_SLIDER_JS = """() => {
  const root = window.jupyterapp.shell.currentWidget.node;  // this notebook's panel only
  const handles = [...root.querySelectorAll('.widget-slider .noUi-handle')];
  for (const h of handles) {
    // aria-valuetext is the widget's value; aria-valuenow can be a rounded slider position
    const now = parseFloat(h.getAttribute('aria-valuetext') || h.getAttribute('aria-valuenow'));
    const max = parseFloat(h.getAttribute('aria-valuemax'));
    if (!(now < max)) continue;
    let box = h.closest('.widget-vbox');
    while (box && !box.querySelector('.widget-image')) {
      box = box.parentElement ? box.parentElement.closest('.widget-vbox') : null;
    }
    if (!box) continue;
    h.setAttribute('data-test-slider', '1');
    box.querySelector('.widget-image').setAttribute('data-test-image', '1');
    return true;
  }
  return false;
}"""

_KERNEL_IDLE_JS = (
    "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
    " && window.jupyterapp.shell.currentWidget.sessionContext"
    " && window.jupyterapp.shell.currentWidget.sessionContext.session"
    " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
    " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'"
)


@pytest.mark.parametrize("notebook", ["00_welcome.ipynb", "02_stacked_state_flow.ipynb"])
def test_notebook_runs_in_the_browser_and_a_slider_redraws_its_figure(jupyterlab, notebook):
    from playwright.sync_api import sync_playwright

    base, token = jupyterlab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stem = notebook.removesuffix(".ipynb")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            # ?reset: a fresh workspace, so notebooks opened by an earlier test stay closed
            page.goto(f"{base}/lab/tree/{notebook}?reset&token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            page.wait_for_function(_KERNEL_IDLE_JS, timeout=90_000)
            # Clear the committed outputs first, so everything checked below comes from this run.
            page.evaluate(
                "() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')"
            )
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_function(
                f"() => ({_CELL_STATE_JS})().every(c => c.count !== null) && ({_KERNEL_IDLE_JS})()",
                timeout=180_000,
                polling=500,
            )
            cells = page.evaluate(_CELL_STATE_JS)
            errors = [e for c in cells for e in c["errors"]]
            assert not errors, f"{notebook}: cells raised in the browser: {errors}"
            tracebacks = page.locator(
                ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
            ).filter(has_text="Traceback")
            assert tracebacks.count() == 0

            # An explorer widget is live: a slider moved with the keyboard redraws its <img>.
            page.wait_for_selector(".widget-image", state="attached", timeout=30_000)
            assert page.evaluate(_PICK_SLIDER_JS), f"{notebook}: no movable slider next to a figure"
            handle = page.locator("[data-test-slider]")
            image = page.locator("[data-test-image]")
            image.scroll_into_view_if_needed()
            before_src = image.get_attribute("src")
            before_value = handle.get_attribute("aria-valuetext")
            handle.focus()
            for _ in range(3):
                handle.press("ArrowRight")
            page.wait_for_function(
                "before => document.querySelector('[data-test-image]').getAttribute('src')"
                " !== before",
                arg=before_src,
                timeout=30_000,
            )
            assert handle.get_attribute("aria-valuetext") != before_value, "the slider did not move"
            assert image.get_attribute("src") != before_src, "the figure did not change"
            page.wait_for_function(_KERNEL_IDLE_JS, timeout=30_000)
            page.wait_for_timeout(500)
            page.screenshot(path=str(ARTIFACTS / f"{stem}_after_slider.png"), full_page=False)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / f"{stem}_failure.png"))
            raise
        finally:
            browser.close()
