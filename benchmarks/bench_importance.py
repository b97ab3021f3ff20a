"""Benchmark: the cost of each layer-importance method and the importance explorer's redraw time.

    python benchmarks/bench_importance.py            # notebook 09's sizes
    python benchmarks/bench_importance.py --redraws 30

Sizes match notebook 09: 180 test sentences, 7 hidden states ([CLS] of the embedding output and
6 layers), 384 features, a BiLSTM pooling with 32 units per direction. Features are random (the cost
does not depend on their values), so the benchmark needs no encoder. Wall time on a shared machine
is inflated by other processes; CPU time (one thread) is the better estimate of an idle machine.
Quality bar (COURSE.md): a widget redraw takes 100 ms or less (median); the explorer's own
``redraw_cpu_seconds`` are reported, aim for 60 ms CPU or less.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch


def _timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``fn`` over ``repeats`` calls (after one warm-up call)."""
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def main(argv: list[str] | None = None) -> dict[str, tuple[float, float]]:
    """Print a table of median wall / CPU milliseconds; return it as ``{row: (wall_s, cpu_s)}``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=180)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--redraws", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from course_utils.importance import (
        ablation_importance,
        gradient_x_input,
        integrated_gradients,
        mix_weight_importance,
    )
    from course_utils.importance_plots import importance_explorer
    from course_utils.layer_pooling import make_classifier

    n, layers, hidden = args.examples, 7, 384
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, layers, hidden, generator=g)  # (N, L+1, H)
    reference = torch.randn(4 * n, layers, hidden, generator=g)
    y = torch.randint(0, 2, (n,), generator=g)
    torch.manual_seed(0)
    lstm = make_classifier(
        "BiLSTM final states", num_layers=6, hidden_size=hidden, lstm_hidden=32
    ).eval()
    mix = make_classifier("scalar mix", num_layers=6, hidden_size=hidden, head_hidden=64).eval()

    rows: dict[str, tuple[float, float]] = {}
    methods = {
        "ablation": lambda: ablation_importance(lstm, x, y, reference=reference),
        "gradient x input": lambda: gradient_x_input(lstm, x, y, reference=reference),
        "integrated gradients (32 steps)": lambda: integrated_gradients(
            lstm, x, y, reference=reference, steps=32
        ),
    }
    for name, fn in methods.items():
        rows[f"{name}, BiLSTM, {n} examples"] = _timed(fn, args.repeats)

    imps = {
        "BiLSTM": {name.split(" (")[0]: fn() for name, fn in methods.items()},
        "scalar mix": {
            "ablation": ablation_importance(mix, x, y, reference=reference),
            "mix weights": mix_weight_importance(mix, n),
        },
    }
    explorer = importance_explorer(
        imps, texts=[f"sentence {i}" for i in range(n)], targets=y, predictions=y
    )
    explorer.redraw_seconds.clear()
    explorer.redraw_cpu_seconds.clear()
    for i in range(args.redraws):  # mostly new examples, sometimes another method or model
        if i % 3 == 2:
            explorer.controls["model"].value = (
                "scalar mix" if explorer.values["model"] == "BiLSTM" else "BiLSTM"
            )
        elif i % 3 == 1:
            explorer.controls["method"].value = (
                "gradient x input" if explorer.values["method"] == "ablation" else "ablation"
            )
        else:
            explorer.controls["index"].value = (explorer.values["index"] + 7) % n
    rows["importance explorer redraw"] = (
        statistics.median(explorer.redraw_seconds),
        statistics.median(explorer.redraw_cpu_seconds),
    )

    print(f"{'what':<45} {'wall ms':>9} {'cpu ms':>9}   (median; {args.threads} thread(s))")
    for name, (wall, cpu_s) in rows.items():
        print(f"{name:<45} {1000 * wall:9.1f} {1000 * cpu_s:9.1f}")
    return rows


if __name__ == "__main__":
    main()
