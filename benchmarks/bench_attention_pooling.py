"""Widget redraw times of notebooks 04 and 05: the attention explorer and the gradient explorer.

    python benchmarks/bench_attention_pooling.py [--repeats 20]

Builds both explorers on data of the notebooks' sizes (32 sequences of up to 24 steps, two models;
64 sequences, three depths, two stages), moves their controls and prints the median redraw time as
wall clock and as CPU time of this process (on a shared machine the wall clock also counts the time
other processes held the cores; the CPU time is what the redraw costs). Budget: 100 ms (median).
Timings are never asserted in tests.
"""

from __future__ import annotations

import argparse
import statistics
import time

import ipywidgets as widgets
import matplotlib as mpl
import torch

from course_utils.attention_plots import attention_explorer
from course_utils.gradient_plots import gradient_explorer
from course_utils.masks import lengths_to_mask, masked_softmax
from course_utils.style import STYLE
from course_utils.tasks import padded_adding_problem
from course_utils.widgets import FigureExplorer


def _timed(explorer, changes) -> tuple[float, float]:
    wall, cpu = [], []
    for name, value in changes:
        w, c = time.perf_counter(), time.process_time()
        explorer.controls[name].value = value
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def redraw_times(repeats: int = 20) -> dict[str, tuple[float, float]]:
    """Median (wall, cpu) seconds per redraw of each explorer."""
    g = torch.Generator().manual_seed(0)
    task = padded_adding_problem(32, 24, seed=0)
    x, lengths, positions = task.x, task.lengths, task.positions
    mask = lengths_to_mask(lengths, 24)
    weights = {
        name: masked_softmax(torch.randn(32, 24, generator=g) * 3, mask)
        for name in ("seed", "additive")
    }
    norms = {
        stage: {f"{d} layers": torch.rand(64, 24, generator=g) * 10.0**-d for d in (1, 2, 3)}
        for stage in ("at initialisation", "after training")
    }
    out = {}
    with mpl.rc_context(STYLE):  # as in the notebooks, after use_course_style()
        ex = attention_explorer(weights, lengths=lengths, positions=positions, inputs=x[..., 0])
        out["attention explorer (05)"] = _timed(
            ex, [("example", (k % 31) + 1) for k in range(repeats)]
        )
        ge = gradient_explorer(norms, positions=positions[:64].repeat(2, 1)[:64])
        changes = [
            ("example", (k % 63) + 1)
            if k % 4
            else ("stage", ["after training", "at initialisation"][k // 4 % 2])
            for k in range(repeats)
        ]
        out["gradient explorer (04)"] = _timed(ge, changes)
        # Reference: the cheapest possible redraw on this machine now (one line, same figure size).
        ref = FigureExplorer(
            lambda fig, k: fig.add_subplot().plot([0, k]),
            {"k": widgets.IntSlider(value=1, min=1, max=repeats + 1)},
            figsize=(7.0, 3.0),
            layout="none",
        )
        out["reference: one-line figure"] = _timed(ref, [("k", k + 2) for k in range(repeats)])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    print(f"{'widget':<28} {'median wall ms':>15} {'median cpu ms':>14}  budget 100 ms")
    for name, (wall, cpu) in redraw_times(args.repeats).items():
        print(f"{name:<28} {wall * 1e3:>15.1f} {cpu * 1e3:>14.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
