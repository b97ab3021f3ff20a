"""The evidence rules of the course (CONTRIBUTING.md, "What counts as evidence"), checked on the notebooks.

- no verdict is typed in: every claim check computes it from a rule (``course_utils.checks``);
- every claim check sits in a cell nbval compares (``# NBVAL_CHECK_OUTPUT``);
- no committed verdict is INCONCLUSIVE (a control that did not come out the other way);
- every notebook run at ``SEED`` 1 and at ``SEED`` 2, with its full parameters, prints the same
  ``Verdict:`` lines as the committed run (findings that rest on training hold at other seeds).
"""

from __future__ import annotations

import re

import nbformat
import papermill
import pytest

from tests.notebook_tools import NOTEBOOKS, notebook_paths

PATHS = notebook_paths()
IDS = [p.stem for p in PATHS]
TYPED_VERDICT = re.compile(r"""\bverdict\s*=\s*(["']|f["'])""")


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def verdict_lines(nb) -> list[str]:
    """Every printed ``Verdict: ...`` line of a notebook, in order."""
    lines = []
    for cell in _code(nb):
        for out in cell.get("outputs", []):
            text = out.get("text", "") if out.get("output_type") == "stream" else ""
            lines += [ln.strip() for ln in text.splitlines() if ln.startswith("Verdict:")]
    return lines


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_no_typed_in_verdicts(path):
    nb = nbformat.read(path, as_version=4)
    typed = [i for i, c in enumerate(nb.cells) if TYPED_VERDICT.search(c.source)]
    assert not typed, f"{path.name}: cells {typed} type a verdict in; compute it with claim_check"


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_claim_checks_are_compared_by_nbval(path):
    nb = nbformat.read(path, as_version=4)
    unchecked = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code"
        and "claim_check(" in c.source
        and not c.source.lstrip().startswith("# NBVAL_CHECK_OUTPUT")
        and "import" not in c.source.split("claim_check(")[0].splitlines()[-1]
    ]
    assert not unchecked, (
        f"{path.name}: claim checks in cells {unchecked} lack # NBVAL_CHECK_OUTPUT"
    )


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_committed_verdicts_are_conclusive(path):
    nb = nbformat.read(path, as_version=4)
    lines = verdict_lines(nb)
    calls = sum(c.source.count("claim_check(") for c in _code(nb)) - sum(
        "import" in line and "claim_check" in line
        for c in _code(nb)
        for line in c.source.splitlines()
    )
    assert len(lines) >= calls, (
        f"{path.name}: {calls} claim checks but {len(lines)} verdicts printed"
    )
    assert not [ln for ln in lines if "INCONCLUSIVE" in ln], (
        f"{path.name}: a control did not come out the other way: {lines}"
    )


@pytest.mark.notebook
@pytest.mark.seeds
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_same_verdicts_at_other_seeds(path, seed, tmp_path):
    committed = nbformat.read(path, as_version=4)
    out = tmp_path / path.name
    papermill.execute_notebook(
        str(path),
        str(out),
        parameters={"SEED": seed},
        cwd=str(NOTEBOOKS),
        kernel_name="python3",
        progress_bar=False,
        execution_timeout=300,
    )
    assert verdict_lines(nbformat.read(out, as_version=4)) == verdict_lines(committed), (
        f"{path.name} at SEED {seed} prints other verdicts than the committed run"
    )
