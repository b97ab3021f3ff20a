"""Every notebook is committed executed and clean, and runs with small papermill parameters.

nbval (``pytest --nbval-lax notebooks``) re-executes the notebooks as committed and compares the cells
tagged ``nbval-check-output``; this module checks what nbval does not: the committed state, the
course structure, and that the ``parameters`` cell really parameterises the notebook.
"""

from __future__ import annotations

import ast

import nbformat
import papermill
import pytest

from tests.notebook_tools import NOTEBOOKS, notebook_paths

PATHS = notebook_paths()
IDS = [p.stem for p in PATHS]


def test_the_course_has_its_notebooks():
    assert PATHS and PATHS[0].name == "00_welcome.ipynb"
    numbers = [p.name[:2] for p in PATHS]
    assert numbers == [f"{i:02d}" for i in range(len(PATHS))], (
        f"notebook numbers must run 00, 01, ... without gaps or duplicates: {numbers}"
    )


def _parameters_cell(nb):
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "expected exactly one code cell tagged 'parameters' (papermill)"
    return cells[0]


def _assigned_names(source: str) -> set[str]:
    tree = ast.parse(source)
    names = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_committed_executed_without_errors(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    unexecuted = [i for i, c in enumerate(code) if c.execution_count is None]
    assert not unexecuted, (
        f"{path.name}: code cells {unexecuted} have no outputs: run `make notebooks`"
    )
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name}: not run top to bottom once: {counts}"
    )
    errors = [o.get("ename") for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name}: committed with errors {errors}"


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_course_structure(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), "starts with a title"
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown").lower()
    assert "summary" in text, f"{path.name}: needs a summary section"
    smoke = nb.metadata.get("course", {}).get("smoke_parameters")
    assert smoke, f"{path.name}: metadata course.smoke_parameters (small papermill values) missing"
    unknown = set(smoke) - _assigned_names(_parameters_cell(nb).source)
    assert not unknown, (
        f"{path.name}: smoke parameters {unknown} are not set in the parameters cell"
    )


@pytest.mark.notebook
@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_runs_with_small_parameters(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    params = nb.metadata["course"]["smoke_parameters"]
    out = tmp_path / path.name
    papermill.execute_notebook(
        str(path),
        str(out),
        parameters=params,
        cwd=str(NOTEBOOKS),
        kernel_name="python3",
        progress_bar=False,
        execution_timeout=300,
    )
    ran = nbformat.read(out, as_version=4)
    injected = [c for c in ran.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and all(name in injected[0].source for name in params)
