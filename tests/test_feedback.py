"""feedback: Feedback's report, the one comparison (``matches``), the one way to name a mistake, and
the contract that keeps every exercise checker on them."""

from __future__ import annotations

import ast
import importlib
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from course_utils import feedback
from course_utils.feedback import Feedback, matches, matching_mistake, max_difference

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = sorted((ROOT / "course_utils" / "exercises").glob("[!_]*.py"))


def test_feedback_reports_unfinished_broken_and_correct_code():
    def starter(x):
        raise NotImplementedError

    def broken(x):
        return x @ torch.ones(5)  # shape error

    def check(fn):
        fb = feedback.Feedback("Exercise: double it")
        out = fb.call(fn, torch.ones(2, 3))
        if feedback.ran(out) and fb.check_tensor(out):
            fb.check_close(out, torch.full((2, 3), 2.0), hint="multiply by 2")
        return fb

    unfinished = check(starter)
    assert not unfinished.passed and "not written yet" in str(unfinished)
    crashed = check(broken)
    assert not crashed.passed and "raised RuntimeError" in str(crashed)
    wrong = check(lambda x: x)
    assert not wrong.passed and "hint: multiply by 2" in str(wrong)
    right = check(lambda x: 2 * x)
    assert right.passed and "all checks passed" in repr(right)
    assert not feedback.Feedback("empty").passed  # no check ran: not a pass


def test_feedback_name_mistake_gives_the_matching_hint():
    fb = feedback.Feedback("t")
    fb.fail("values differ")
    fb.name_mistake(
        torch.zeros(2), {"summed": torch.ones(2), "zeros": torch.zeros(2)}, otherwise="look again"
    )
    assert fb.lines[-1] == (False, "values differ", "zeros")
    fb.fail("values differ")
    fb.name_mistake(torch.full((2,), 5.0), {"summed": torch.ones(2)}, otherwise="look again")
    assert fb.lines[-1][2] == "look again"
    fb.ok("fine")
    with pytest.raises(ValueError, match="failed check"):
        fb.name_mistake(torch.zeros(2), {}, otherwise="x")


def test_matches_compares_tensors_pairs_and_numbers_to_atol():
    a = torch.tensor([1.0, 2.0])
    assert matches(a, a + 1e-6) and not matches(a, a + 1e-3)
    assert matches(a, a.double(), atol=0)  # dtypes need not agree
    assert not matches(a, torch.ones(3)) and not matches([1.0, 2.0], a)  # shape, not a tensor
    assert not matches(torch.tensor([math.nan, 2.0]), a)  # NaN never matches
    assert matches((a, torch.zeros(1)), (a, torch.zeros(1))) and not matches(a, (a, a))
    assert matches(np.int64(4608), 4608, atol=0) and matches(4608.0, 4608, atol=0)
    assert not matches(True, 1, atol=0) and not matches(torch.tensor(3), 3)
    assert max_difference(torch.zeros(0), torch.zeros(0)) == 0.0


def test_matching_mistake_returns_the_first_hint_that_matches():
    mistakes = {"summed": torch.ones(2), "zeros": torch.zeros(2), "also zeros": torch.zeros(2)}
    assert matching_mistake(torch.zeros(2), mistakes) == "zeros"
    assert matching_mistake(torch.full((2,), 5.0), mistakes) is None
    assert matching_mistake(0.5004, {"half": 0.5}, atol=1e-3) == "half"


def test_name_mistake_gives_the_failed_check_the_matching_hint():
    fb = Feedback("t")
    assert not fb.check_close(torch.zeros(2), torch.full((2,), 2.0), hint="double it")
    fb.name_mistake(torch.zeros(2), {"you returned zeros": torch.zeros(2)})
    assert fb.lines[-1] == (
        False,
        "the values differ from the reference by up to 2",
        "you returned zeros",
    )
    assert not fb.check_close(torch.ones(2), torch.full((2,), 2.0), hint="double it")
    fb.name_mistake(torch.ones(2), {"you returned zeros": torch.zeros(2)})
    assert fb.lines[-1][2] == "double it"  # no mistake matches: the check's own hint stays
    fb.fail("values differ")
    fb.name_mistake(torch.ones(2), {}, otherwise="look again")
    assert fb.lines[-1][2] == "look again"
    fb.ok("fine")
    with pytest.raises(ValueError, match="failed check"):
        fb.name_mistake(torch.zeros(2), {})


def test_check_pair_and_check_result_stop_on_what_is_not_a_usable_result():
    fb = Feedback("t")
    assert fb.check_pair(torch.ones(2), "h", "c") is None
    assert "expected a pair (h, c), got Tensor" in str(fb) and "return h, c" in str(fb)
    fb = Feedback("t")
    assert fb.check_pair((torch.ones(2), None), "h", "c") is None and "c should be" in str(fb)
    h, c = Feedback("t").check_pair((torch.ones(2), torch.zeros(2)), "h", "c")
    assert torch.equal(h, torch.ones(2)) and torch.equal(c, torch.zeros(2))
    fb = Feedback("t")
    assert not fb.check_result(feedback.NOT_RUN, (2,)) and not fb.lines  # the call said why
    assert not fb.check_result(torch.ones(3), (2,)) and "has shape (3,), expected (2,)" in str(fb)
    assert Feedback("t").check_result(torch.ones(2), (2,))


# ---------------------------------------------------------------------------------- the contract
def _own_comparisons(tree: ast.AST) -> list[str]:
    """Places where a module compares tensors by itself instead of with feedback's helpers."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.Lambda) and getattr(node, "name", "") in {
            "_same",
            "_close",
            "same",
            "close",
        }:
            found.append(f"line {node.lineno}: def {node.name}")
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda):
            found.append(f"line {node.lineno}: a comparison lambda")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in {"allclose", "isclose"}:
                found.append(f"line {node.lineno}: .{node.func.attr}(...)")
            abs_of = node.func.value  # (a - b).abs().max(): a difference measured by hand
            if (
                node.func.attr in {"max", "amax"}
                and isinstance(abs_of, ast.Call)
                and isinstance(abs_of.func, ast.Attribute)
                and abs_of.func.attr == "abs"
                and isinstance(abs_of.func.value, ast.BinOp)
                and isinstance(abs_of.func.value.op, ast.Sub)
            ):
                found.append(f"line {node.lineno}: (a - b).abs().max()")
    return found


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.stem)
def test_exercise_modules_compare_only_with_feedbacks_helpers(path):
    """No exercise module grows its own tensor comparison: `feedback.matches` (through
    `check_close`) says whether a value is the reference, `name_mistake` which mistake it is."""
    found = _own_comparisons(ast.parse(path.read_text()))
    assert not found, (
        f"{path.name} compares values by itself ({found}); use course_utils.feedback: "
        "fb.check_close / matches(value, expected, atol=...) to compare, "
        "fb.name_mistake(value, {hint: wrong}) to name the mistake"
    )


def test_the_contract_catches_a_private_comparison():
    code = "def _same(a, b):\n    return torch.allclose(a, b)\nd = (a - b).abs().max()\n"
    assert len(_own_comparisons(ast.parse(code))) == 3


def _notebook_of(module: str) -> int:
    hits = [
        p
        for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")
        if f"course_utils.exercises.{module} import" in p.read_text()
    ]
    assert len(hits) == 1, f"exercises.{module} should be used by exactly one notebook: {hits}"
    return int(hits[0].name[:2])


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.stem)
def test_exercise_modules_name_references_and_titles_as_the_notebook_does(path):
    """`__all__` lists every checker and its `reference_*` (never `*_solution`), and every checker
    title carries the notebook's exercise number ("Exercise 5.2", never "Exercise 2")."""
    module = importlib.import_module(f"course_utils.exercises.{path.stem}")
    public = getattr(module, "__all__", None)
    assert public, f"{path.name} has no __all__"
    checks = sorted(n for n in public if n.startswith("check_"))
    assert checks, f"{path.name}: no check_* in __all__"
    for name in checks:
        assert f"reference_{name[len('check_') :]}" in public, f"{path.name}: reference of {name}"
    defined = {n for n in vars(module) if not n.startswith("_")}
    assert not [n for n in defined if n.endswith("_solution")], f"{path.name}: *_solution name"
    number = _notebook_of(path.stem)
    titles = re.findall(r'Feedback\(\s*f?"(Exercise [^"]*)"', path.read_text())
    assert len(titles) == len(checks), f"{path.name}: one Feedback title per checker: {titles}"
    for title in titles:
        assert re.match(rf"Exercise {number}\.\d+ - ", title), (
            f"{path.name}: {title!r} should be numbered as notebook {number:02d} numbers it "
            f"(Exercise {number}.k - ...)"
        )
