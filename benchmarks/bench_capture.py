"""What attention capture costs, and how fast the head explorer redraws.

    python benchmarks/bench_capture.py

Prints the median forward time of a few models with and without ``capture_attention`` (eval mode, no
gradients: the setting in which the fused fast path would otherwise run) and the median redraw time
of ``head_explorer`` (budget: 100 ms wall; 60 ms CPU time, which load does not inflate). Timings depend on the machine and its load; they are never
asserted in tests.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from course_utils.capture import capture_attention
from course_utils.head_plots import head_explorer
from course_utils.mha_models import LSTMAttention


def _median_seconds(fn: Callable[[], object], repeats: int = 15, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def capture_overhead(repeats: int = 15) -> list[tuple[str, float, float]]:
    """(model, plain ms, captured ms) for a seed-003 design and a transformer encoder."""
    torch.manual_seed(0)
    cases = {
        "LSTMAttention B=32 T=100 H=64": (
            LSTMAttention(16, 64, num_layers=2, num_heads=4).eval(),
            (torch.randn(32, 100, 16),),
        ),
        "TransformerEncoder 2x(64, 4 heads) B=32 T=100": (
            nn.TransformerEncoder(
                nn.TransformerEncoderLayer(64, 4, 128, batch_first=True),
                2,
                enable_nested_tensor=False,
            ).eval(),
            (torch.randn(32, 100, 64),),
        ),
    }
    rows = []
    for name, (model, inputs) in cases.items():
        with torch.no_grad():
            plain = _median_seconds(lambda m=model, i=inputs: m(*i), repeats)

            def captured(m=model, i=inputs):
                with capture_attention(m):
                    m(*i)

            with_capture = _median_seconds(captured, repeats)
        rows.append((name, plain * 1e3, with_capture * 1e3))
    return rows


def explorer_redraw(moves: int = 12) -> tuple[float, float]:
    """Median (wall, CPU) seconds of a head_explorer redraw (8 heads x 12 tokens, 16 examples).

    CPU time of this process stays steady when other work loads the machine; wall time does not.
    """
    weights = torch.softmax(
        torch.randn(16, 8, 12, 12, generator=torch.Generator().manual_seed(0)), -1
    )
    explorer = head_explorer(weights, lengths=[12 - i % 5 for i in range(16)])
    explorer.redraw_seconds.clear()
    explorer.redraw_cpu_seconds.clear()
    for k in range(moves):
        control = ("example", "head", "query")[k % 3]
        explorer.controls[control].value = (k // 3 + 1) % 3
    return statistics.median(explorer.redraw_seconds), statistics.median(
        explorer.redraw_cpu_seconds
    )


def main() -> None:
    torch.set_num_threads(1)
    print(f"{'model':<48} {'plain ms':>9} {'capture ms':>11} {'ratio':>6}")
    for name, plain, captured in capture_overhead():
        print(f"{name:<48} {plain:9.2f} {captured:11.2f} {captured / plain:6.2f}")
    wall, cpu = explorer_redraw()
    print(
        f"\nhead_explorer redraw, median: {wall * 1e3:.0f} ms wall (budget 100 ms), "
        f"{cpu * 1e3:.0f} ms CPU (target 60 ms)"
    )


if __name__ == "__main__":
    main()
