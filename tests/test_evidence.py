"""The evidence rules of the course (CONTRIBUTING.md, "What counts as evidence"), checked on the notebooks.

- no verdict is typed in: every claim check computes it from a rule (``course_utils.checks``);
- every claim check sits in a cell nbval compares (``# NBVAL_CHECK_OUTPUT``);
- no committed verdict is INCONCLUSIVE (a control that did not come out the other way);
- no control is a constant: every ``control_holds`` rests on a measured value (checked statically);
- every notebook run at ``SEED`` 1 and at ``SEED`` 2, with its full parameters, prints the same
  ``Verdict:`` lines as the committed run (findings that rest on training hold at other seeds).
"""

from __future__ import annotations

import ast
import builtins
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


BUILTINS = set(dir(builtins))


class ControlReader:
    """Why a claim check's ``control_holds`` cannot come out the other way (no reasons: it can).

    A control must be measured: its outcome has to depend on a value the notebook computed. This
    reads the expression passed as ``control_holds`` (following names assigned at a cell's top level)
    down to each outcome and flags three shapes that cannot move with the data:
    a constant (``False``, ``[False for s in SEEDS]``); a comparison with no measured value on
    either side (``0.0 <= PADDING``: names in CAPITALS are the notebook's parameters and thresholds,
    loop variables over ``SEEDS`` or ``range`` are indices); and a comparison of a value with itself,
    up to scaling by constants (``uniform[s] >= FOCUS * uniform[s]``). A function call on measured
    values counts as measured: what happens inside a helper is the helper's tests' business.
    """

    def __init__(self, assignments: dict[str, ast.expr]):
        self.assignments = assignments

    def problems(self, expr: ast.expr, depth: int = 0) -> list[str]:
        if depth > 6:
            return []
        if isinstance(expr, ast.Name) and expr.id in self.assignments:
            return self.problems(self.assignments[expr.id], depth + 1)
        if isinstance(expr, ast.List | ast.Tuple | ast.Set):
            return [p for e in expr.elts for p in self.problems(e, depth)]
        if isinstance(expr, ast.Dict):
            return [p for v in expr.values for p in self.problems(v, depth)]
        if isinstance(expr, ast.ListComp | ast.GeneratorExp | ast.SetComp | ast.DictComp):
            # a loop variable over measured values is measured; one over SEEDS or range() is an index
            index = {
                n.id
                for g in expr.generators
                if not self.measured(g.iter, set())
                for n in ast.walk(g.target)
                if isinstance(n, ast.Name)
            }
            return self.leaf(expr.value if isinstance(expr, ast.DictComp) else expr.elt, index)
        return self.leaf(expr, set())

    @staticmethod
    def measured(node: ast.AST, index: set[str]) -> set[str]:
        names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        return {n for n in names if n not in index and n not in BUILTINS and not n.isupper()}

    def unscaled(self, node: ast.expr, index: set[str]) -> ast.expr:
        """A comparison's side without scaling or shifting by constants (``FOCUS * x`` -> ``x``)."""
        if isinstance(node, ast.BinOp) and isinstance(
            node.op, ast.Mult | ast.Div | ast.Add | ast.Sub
        ):
            for const, rest in ((node.left, node.right), (node.right, node.left)):
                if not self.measured(const, index) and not _uses(const, index):
                    return self.unscaled(rest, index)
        return node

    def leaf(self, expr: ast.expr, index: set[str]) -> list[str]:
        if isinstance(expr, ast.Constant):
            return [f"the constant {ast.unparse(expr)}"]
        if not self.measured(expr, index):
            return [f"{ast.unparse(expr)!r} uses no measured value"]
        found = []
        for node in ast.walk(expr):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                forms = [ast.dump(self.unscaled(side, index)) for side in sides]
                if len(set(forms)) < len(forms):
                    found.append(f"{ast.unparse(node)!r} compares a value with itself")
                elif not any(self.measured(side, index) for side in sides):
                    found.append(f"{ast.unparse(node)!r} compares constants")
        return found


def _uses(node: ast.AST, names: set[str]) -> bool:
    return any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(node))


def claim_check_calls(nb) -> list[tuple[int, dict[str, ast.expr], ControlReader]]:
    """``(cell index, keyword arguments)`` of every ``claim_check(...)`` call, with a reader."""
    trees = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            source = "\n".join(
                ln for ln in cell.source.splitlines() if not ln.lstrip().startswith(("%", "!"))
            )
            trees.append((i, ast.parse(source)))
    assignments = {
        node.targets[0].id: node.value
        for _, tree in trees
        for node in tree.body
        if isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
    }
    reader = ControlReader(assignments)
    return [
        (i, {k.arg: k.value for k in node.keywords}, reader)
        for i, tree in trees
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "claim_check"
    ]


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_controls_are_measured_not_constant(path):
    nb = nbformat.read(path, as_version=4)
    bad = {
        i: problems
        for i, kwargs, reader in claim_check_calls(nb)
        if (problems := reader.problems(kwargs["control_holds"]))
    }
    assert not bad, (
        f"{path.name}: controls that cannot come out the other way (cell: why): {bad}. "
        "Measure the control with the same rule as the claim."
    )


@pytest.mark.parametrize(
    ("control", "flagged"),
    [
        ("[False for s in SEEDS]", True),
        ("True", True),
        ("[uniform[s] >= FOCUS * uniform[s] for s in SEEDS]", True),
        ("[0.0 <= PADDING for s in SEEDS]", True),
        ("acc >= acc", True),
        ("{'a': [x[s] > y[s] for s in SEEDS], 'b': [0.1 > THRESHOLD for s in SEEDS]}", True),
        ("ctrl", True),  # ctrl = [False, False, False] in an earlier cell
        ("[g >= 0.5 for g in grads]", False),
        ("{'a': [x[s] > y[s] for s in SEEDS]}", False),
        ("[gain[s][0] > gain[s][1] for s in SEEDS]", False),
        ("at_seeds(lambda s: rival_passes(s), SEED)", False),
    ],
)
def test_control_reader_flags_constants_and_self_comparisons(control, flagged):
    reader = ControlReader({"ctrl": ast.parse("[False, False, False]", mode="eval").body})
    assert bool(reader.problems(ast.parse(control, mode="eval").body)) is flagged


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
