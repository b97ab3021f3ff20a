"""The evidence rules of the course (CONTRIBUTING.md, "What counts as evidence"), checked on the notebooks.

- no verdict is typed in: every claim check computes it from a rule (``course_utils.checks``);
- every claim check sits in a cell nbval compares (cell tag ``nbval-check-output``);
- no committed verdict is INCONCLUSIVE (a control that did not come out the other way);
- no control is a constant: every ``control_holds`` rests on a measured value, decided by the
  claim's own rule (checked statically, ``tests/evidence_reader.py``);
- no verdict reads a clock: costs are counted, not timed;
- every notebook run at ``SEED`` 1 and at ``SEED`` 2, with its full parameters, prints the same
  ``Verdict:`` lines as the committed run (findings that rest on training hold at other seeds).
"""

from __future__ import annotations

import re

import nbformat
import papermill
import pytest

from tests.evidence_reader import claim_check_calls, clock_readings, rule_signature
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
        and "nbval-check-output" not in c.metadata.get("tags", [])
        and "import" not in c.source.split("claim_check(")[0].splitlines()[-1]
    ]
    assert not unchecked, (
        f"{path.name}: claim checks in cells {unchecked} lack the cell tag nbval-check-output"
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


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_controls_are_measured_not_constant(path):
    nb = nbformat.read(path, as_version=4)
    bad = {}
    for i, kwargs, reader in claim_check_calls(nb):
        problems = reader.problems(kwargs.get("control_holds"))
        if "testable" in kwargs:
            problems += [f"testable: {p}" for p in reader.problems(kwargs["testable"])]
        if problems:
            bad[i] = problems
    assert not bad, (
        f"{path.name}: controls that cannot come out the other way (cell: why): {bad}. "
        "Measure the control with the same rule as the claim."
    )


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_controls_use_the_claims_own_rule(path):
    nb = nbformat.read(path, as_version=4)
    differ = {
        i: (
            rule_signature(kw.get("holds"), reader),
            rule_signature(kw.get("control_holds"), reader),
        )
        for i, kw, reader in claim_check_calls(nb)
        if rule_signature(kw.get("holds"), reader)
        != rule_signature(kw.get("control_holds"), reader)
    }
    assert not differ, (
        f"{path.name}: the control is decided by another rule than the claim "
        f"(cell: (claim's comparisons, control's comparisons)): {differ}"
    )


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_no_verdict_from_wall_clock_time(path):
    nb = nbformat.read(path, as_version=4)
    timed = {
        i: sorted(clock_readings(kw.get("holds"), r) | clock_readings(kw.get("control_holds"), r))
        for i, kw, r in claim_check_calls(nb)
    }
    timed = {i: names for i, names in timed.items() if names}
    assert not timed, (
        f"{path.name}: claim checks decided by wall-clock time (cell: what reads a clock): {timed}. "
        "Count the cost instead (steps, multiply-adds, parameters), every part of the pipeline included."
    )


def test_clock_readings_follow_names_and_functions():
    source = (
        "import time\n"
        "def run(s):\n    t0 = time.perf_counter()\n    return time.perf_counter() - t0\n"
        "secs = {'a': [1.0], 'b': [2.0]}\n"
        "flops = [10, 20]\n"
        "a = claim_check(holds=[x > y for x, y in zip(secs['a'], secs['b'])], control_holds=[1 > 0])\n"
        "b = claim_check(holds=[run(s) > 1 for s in SEEDS], control_holds=[1 > 0])\n"
        "c = claim_check(holds=[f > 5 for f in flops], control_holds=[1 > 0])\n"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    found = [bool(clock_readings(kw["holds"], r)) for _, kw, r in claim_check_calls(nb)]
    assert found == [True, True, False]


_EARLIER = """
import numpy as np
from course_utils.checks import claim_check
ctrl = [False, False, False]
def rival_passes(s):
    return False
def rival_trained(s):
    model = train(s)
    return score(model) > 0.5
later = [False] * 3
appended = []
for s in SEEDS:
    appended.append(False)
"""


@pytest.mark.parametrize(
    ("control", "flagged"),
    [
        ("[False for s in SEEDS]", True),
        ("True", True),
        ("[uniform[s] >= FOCUS * uniform[s] for s in SEEDS]", True),
        ("[0.0 <= PADDING for s in SEEDS]", True),
        ("acc >= acc", True),
        ("{'a': [x[s] > y[s] for s in SEEDS], 'b': [0.1 > THRESHOLD for s in SEEDS]}", True),
        ("ctrl", True),
        ("later", True),
        ("appended", True),
        ("[False] * 3", True),
        ("[g >= 0.5 or True for g in grads]", True),
        ("at_seeds(lambda s: rival_passes(s), SEED)", True),
        ("np.zeros(3, dtype=bool)", True),
        ("[g >= 0.5 for g in grads]", False),
        ("{'a': [x[s] > y[s] for s in SEEDS]}", False),
        ("[gain[s][0] > gain[s][1] for s in SEEDS]", False),
        ("at_seeds(lambda s: rival_trained(s), SEED)", False),
        ("[score(train(s)) > 0.5 for s in SEEDS]", False),
    ],
)
def test_control_reader_flags_constants_and_self_comparisons(control, flagged):
    source = _EARLIER + f"check = claim_check(holds=[True], control_holds={control})\n"
    source += "later = [x > 0 for x in measured]\n"  # reassigned after the call: not what it read
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    [(_, kwargs, reader)] = claim_check_calls(nb)
    assert bool(reader.problems(kwargs["control_holds"])) is flagged


def test_rule_signature_sees_a_reversed_or_laxer_control():
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "a = claim_check(holds=[x >= T for x in m], control_holds=[x < T for x in r])\n"
                "b = claim_check(holds=[x >= 0.5 for x in m], control_holds=[x >= 0.4 for x in r])\n"
                "c = claim_check(holds=[x[s] >= T for s in SEEDS], control_holds=[y[s] >= T for s in SEEDS])\n"
            )
        ]
    )
    sigs = [
        (rule_signature(kw["holds"], r), rule_signature(kw["control_holds"], r))
        for _, kw, r in claim_check_calls(nb)
    ]
    assert [a != b for a, b in sigs] == [True, True, False]


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
