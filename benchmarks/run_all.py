"""Measure the course against its budgets: every notebook in a fresh kernel, import time, widgets.

    python benchmarks/run_all.py                 # all notebooks, then every benchmarks/bench_*.py
    python benchmarks/run_all.py notebooks/02_*.ipynb --no-topic-benches

For each notebook: wall time top to bottom, the kernel's peak memory (Linux VmHWM, the resident-set
high-water mark), and the median redraw time of every widget it built (each control of every
FigureExplorer is moved a few times after the notebook ran). Budgets from COURSE.md: 60 s and 1.5 GB
per notebook, 8 min for the course, 100 ms per redraw, 1 s for ``import course_utils``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_BUDGET_S, COURSE_BUDGET_S, MEMORY_BUDGET_MB, REDRAW_BUDGET_MS = 60, 480, 1536, 100

# Appended to a copy of each notebook: peak memory and widget redraw times, as one JSON line.
PROBE = r"""
import gc as _gc, json as _json, statistics as _st
from course_utils.widgets import FigureExplorer as _FE

def _moves(control, n=6):
    if hasattr(control, "options") and len(control.options) > 1:
        opts = list(control.options)
        vals = [o[1] if isinstance(o, tuple) else o for o in opts]
        return [vals[(vals.index(control.value) + k) % len(vals)] for k in range(1, n + 1)] if control.value in vals else vals[:n]
    if hasattr(control, "max") and hasattr(control, "min") and not isinstance(control.value, tuple):
        lo, hi, v = control.min, control.max, control.value
        step = getattr(control, "step", None) or (1 if isinstance(v, int) else (hi - lo) / 10)
        return [min(hi, max(lo, lo + ((v - lo) + k * step * 3) % (hi - lo + step))) for k in range(1, n + 1)]
    return []

_redraws = []
for _ex in [o for o in _gc.get_objects() if isinstance(o, _FE)]:
    for _c in _ex.controls.values():
        _n = len(_ex.redraw_seconds)
        for _v in _moves(_c):
            try:
                _c.value = _v
            except Exception:
                pass
        _redraws += _ex.redraw_seconds[_n:]
_peak = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0] / 1024
print("BENCH " + _json.dumps({"peak_mb": _peak, "redraw_ms": [1000 * s for s in _redraws]}))
"""


def run_notebook(path: Path) -> dict:
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    start = time.perf_counter()
    client.execute()
    wall = time.perf_counter() - start
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    probe = json.loads(text.split("BENCH ", 1)[1].splitlines()[0])
    # The probe's own redraws come after the notebook: subtract nothing, they are separate.
    redraws = probe["redraw_ms"]
    return {
        "notebook": path.name,
        "wall_s": round(wall, 1),
        "peak_mb": round(probe["peak_mb"]),
        "widgets_redraws": len(redraws),
        "redraw_median_ms": round(statistics.median(redraws), 1) if redraws else None,
    }


def import_time(statement: str, repeats: int = 5) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    times = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
            ).stdout
        )
        for _ in range(repeats)
    ]
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument(
        "--no-topic-benches",
        action="store_true",
        help="skip benchmarks/bench_*.py (tracing ratio, encoder throughput, ...)",
    )
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or sorted(
        (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")
    )

    print(
        f"import course_utils:               {import_time('import course_utils'):.3f} s (budget 1 s)"
    )
    print(f"import course_utils.tasks (+torch): {import_time('import course_utils.tasks'):.3f} s")
    print()
    header = (
        f"{'notebook':<42} {'wall s':>7} {'peak MB':>8} {'redraws':>8} {'median ms':>10}  budget"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for path in paths:
        row = run_notebook(path)
        rows.append(row)
        ok = (
            row["wall_s"] <= NOTEBOOK_BUDGET_S
            and row["peak_mb"] <= MEMORY_BUDGET_MB
            and (row["redraw_median_ms"] or 0) <= REDRAW_BUDGET_MS
        )
        median = "-" if row["redraw_median_ms"] is None else f"{row['redraw_median_ms']:.1f}"
        print(
            f"{row['notebook']:<42} {row['wall_s']:>7.1f} {row['peak_mb']:>8} "
            f"{row['widgets_redraws']:>8} {median:>10}  {'ok' if ok else 'OVER'}",
            flush=True,
        )
    total = sum(r["wall_s"] for r in rows)
    print("-" * len(header))
    print(
        f"{'whole course':<42} {total:>7.1f}   (budget {COURSE_BUDGET_S} s: "
        f"{'ok' if total <= COURSE_BUDGET_S else 'OVER'})"
    )
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "notebooks.json").write_text(json.dumps(rows, indent=2))

    if not args.no_topic_benches:
        for bench in sorted((ROOT / "benchmarks").glob("bench_*.py")):
            print(f"\n== {bench.name}", flush=True)
            subprocess.run([sys.executable, str(bench)], cwd=ROOT, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
