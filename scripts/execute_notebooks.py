"""Re-execute course notebooks in place, so their committed outputs are fresh.

    python scripts/execute_notebooks.py                  # every notebook in notebooks/
    python scripts/execute_notebooks.py notebooks/02_*.ipynb

Each notebook runs top to bottom in a fresh kernel from the notebooks/ folder (as a learner would) with
nbclient; timing metadata is not recorded, so a re-run with the same numbers leaves no diff.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def execute(path: Path, timeout: int = 600) -> float:
    """Execute ``path`` in place; return the wall time in seconds. Raises on a failing cell."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
        store_widget_state=False,
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    nbformat.write(nb, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        print("no notebooks found", file=sys.stderr)
        return 1
    for path in paths:
        seconds = execute(path.resolve())
        print(f"{path.name:<45} executed in {seconds:6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
