"""The shape of course_utils: a cheap import, one home per public name, imports that go down floors.

The floors are the package's layers, from the foundation up to the visualizer (CONTRIBUTING.md's
module map names them too). A module may import modules on its own floor or below, never above, and
the import graph (top-level and lazy imports inside functions alike) has no cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

import course_utils
from course_utils import tasks

PACKAGE = Path(__file__).resolve().parents[1] / "course_utils"

#: floor -> modules. A new module needs a floor here (and a line in CONTRIBUTING.md).
FLOORS: dict[int, tuple[str, ...]] = {
    0: ("seeding", "device", "style", "progress", "feedback", "checks", "envcheck", "records"),
    1: (
        "masks",
        "tasks",
        "sentences",
        "tracing",
        "gru_tracing",
        "cell_tracing",
        "capture",
        "transformer_attention",
        "memory",
        "probes",
        "costs",
        "metrics",
        "training",
        "early_stopping",
        "gradients",
        "importance",
        "patterns",
        "plots",
        "widgets",
    ),
    2: (
        "attention_pooling",
        "mha_models",
        "seq2seq",
        "bert_lstm",
        "encoders",
        "layer_pooling",
        "controls",
    ),
    3: (
        "alignment_plots",
        "attention_plots",
        "gradient_plots",
        "comparison_plots",
        "head_plots",
        "state_plots",
        "bert_views",
        "importance_plots",
        "pattern_plots",
    ),
    4: ("inspector", "visualizer_app", "exercises"),
}
FLOOR_OF = {module: floor for floor, modules in FLOORS.items() for module in modules}


def module_name(path: Path) -> str:
    """``course_utils/exercises/depth.py`` -> ``exercises.depth``; a package's ``__init__`` -> its name."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py") if module_name(p)}


def imports_of(name: str) -> set[str]:
    """The course_utils modules that ``name`` imports anywhere in its source (lazy imports too)."""
    path = MODULES[name]
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            absolute = [a.name.split(".") for a in node.names]
            found.update(".".join(n[1:]) for n in absolute if n[0] == "course_utils")
            continue
        if not isinstance(node, ast.ImportFrom):
            continue
        written = node.module.split(".") if node.module else []
        if node.level:  # from .x import y, from .. import x
            module = package[: len(package) - (node.level - 1)] + written
        elif written[:1] == ["course_utils"]:
            module = written[1:]
        else:
            continue
        found.add(".".join(module))
        found.update(".".join([*module, a.name]) for a in node.names)  # from . import x
    return {m for m in found if m in MODULES and m != name}


def floor_of(name: str) -> int | None:
    return FLOOR_OF.get(name, FLOOR_OF.get(name.split(".")[0]))


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_every_module_has_a_floor():
    missing = sorted(m for m in MODULES if floor_of(m) is None)
    assert not missing, (
        f"course_utils modules without a floor: {missing}; add each to FLOORS in "
        "tests/test_package.py (the lowest floor above everything it imports) and to the module "
        "map in CONTRIBUTING.md"
    )


def test_imports_have_no_cycle_and_never_go_up_a_floor():
    graph = {m: imports_of(m) for m in MODULES}
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle in course_utils: {' -> '.join(cycle)}"
    upward = [
        f"{m} (floor {floor_of(m)}) imports {d} (floor {floor_of(d)})"
        for m, deps in sorted(graph.items())
        for d in sorted(deps)
        if None not in (floor_of(m), floor_of(d)) and floor_of(d) > floor_of(m)
    ]
    assert not upward, "imports must go down floors, never up:\n" + "\n".join(upward)


def test_the_graph_checks_catch_a_cycle_and_see_lazy_imports():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert "bert_views" in imports_of("inspector")  # imported inside _transformer_view only


def public_definitions(path: Path) -> set[str]:
    """Names a module defines at top level (def, class, assignment) that do not start with _."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_")}


def test_no_public_name_is_defined_in_two_modules():
    homes: dict[str, list[str]] = defaultdict(list)
    for name, path in sorted(MODULES.items()):
        for defined in public_definitions(path):
            homes[defined].append(name)
    twice = {n: m for n, m in sorted(homes.items()) if len(m) > 1}
    assert not twice, (
        "a public name must have one home in course_utils (import it from there): "
        + "; ".join(f"{n} in {', '.join(m)}" for n, m in twice.items())
    )


def test_import_is_lazy_and_changes_nothing():
    # `import course_utils` must not load torch or transformers, nor touch matplotlib's state.
    code = (
        "import sys, course_utils;"
        "heavy = [m for m in ('torch', 'transformers', 'matplotlib') if m in sys.modules];"
        "assert not heavy, heavy;"
        "import course_utils.tasks;"
        "assert 'torch' in sys.modules and 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_submodules_are_attributes_and_unknown_names_fail():
    assert course_utils.tasks is tasks
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        course_utils.nope  # noqa: B018
