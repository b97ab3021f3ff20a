"""Reading course notebooks from tests: find cells by tag and run a starter cell on its own."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def notebook_paths() -> list[Path]:
    """Every course notebook, in order."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def find_notebook(prefix: str) -> Path:
    """The notebook whose name starts with ``prefix`` (e.g. ``"02"``)."""
    matches = sorted(NOTEBOOKS.glob(f"{prefix}*.ipynb"))
    if len(matches) != 1:
        raise FileNotFoundError(f"expected one notebook starting with {prefix!r}, found {matches}")
    return matches[0]


def cells_tagged(path: Path, tag: str) -> list[Any]:
    nb = nbformat.read(path, as_version=4)
    return [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]


def run_tagged_cell(
    path: Path, tag: str, namespace: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Execute the one code cell tagged ``tag`` (e.g. an exercise's starter) in a fresh namespace.

    Starter cells are self-contained (they import what they use), so the learner's untouched code can
    be handed to the checker exactly as the notebook shows it.
    """
    cells = [c for c in cells_tagged(path, tag) if c.cell_type == "code"]
    if len(cells) != 1:
        raise LookupError(f"{path.name}: expected one code cell tagged {tag!r}, found {len(cells)}")
    ns: dict[str, Any] = {"__name__": f"starter_{tag}"} | (namespace or {})
    source = "\n".join(
        line for line in cells[0].source.splitlines() if not line.lstrip().startswith(("%", "!"))
    )
    exec(compile(source, f"{path.name}[{tag}]", "exec"), ns)
    return ns


def _rng_states() -> tuple[Any, ...]:
    return (random.getstate(), np.random.get_state()[1].tobytes(), torch.random.get_rng_state())  # noqa: NPY002


def assert_checker_contract(
    path: Path,
    tag: str,
    name: str,
    check: Callable[[Any], Any],
    solution: Any,
    stubs: Iterable[Any] = (),
    wrong_answers: Mapping[str, tuple[Any, str]] | None = None,
) -> None:
    """The contract of every exercise checker.

    It fails on the notebook's untouched starter (and says the code is not written yet), fails on
    each trivial stub, rejects each plausible wrong answer with a hint that names the mistake, passes
    on the reference solution, and leaves the learner's random generators as they were.

    Args:
        wrong_answers: ``{mistake: (answer, words the feedback must contain)}``, at least 3: the
            mistakes the notebook warns about, each with the part of the hint that names it.
    """
    wrong_answers = dict(wrong_answers or {})
    assert len(wrong_answers) >= 3, f"{tag}: give at least 3 plausible wrong answers"
    on_starter = check(run_tagged_cell(path, tag)[name])
    assert not on_starter.passed and "not written yet" in str(on_starter), str(on_starter)
    for stub in stubs:
        on_stub = check(stub)
        assert not on_stub.passed, f"{tag}: the checker passed a trivial stub:\n{on_stub}"
    for mistake, (answer, named) in wrong_answers.items():
        on_wrong = check(answer)
        assert not on_wrong.passed, (
            f"{tag}: the checker passed the mistake {mistake!r}:\n{on_wrong}"
        )
        assert named.lower() in str(on_wrong).lower(), (
            f"{tag}: the feedback on {mistake!r} should name it ({named!r}):\n{on_wrong}"
        )
    torch.manual_seed(12345)
    before = _rng_states()
    on_solution = check(solution)
    assert on_solution.passed, str(on_solution)
    after = _rng_states()
    assert before[0] == after[0] and before[1] == after[1], f"{tag}: the checker moved random/numpy"
    assert torch.equal(before[2], after[2]), f"{tag}: the checker moved torch's global RNG"
