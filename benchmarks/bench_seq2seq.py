"""Notebook 06's costs: decoder-step explorer redraws, alignment plots, one training step.

    python benchmarks/bench_seq2seq.py

The course's bar for a widget redraw is a median of 100 ms or less (wall), 60 ms or less in CPU time
of the process (steady while other jobs load the machine). The explorer is measured on the notebook's
sizes (6 reversal examples of 8 steps) and on a forecasting alignment (8 x 30). The
training step is one teacher-forced batch (forward, backward, Adam) of the notebook's reversal model,
on one and on two threads. Prints medians; timings are never asserted in tests.
"""

from __future__ import annotations

import statistics
import time

import torch

from course_utils.alignment_plots import decoder_step_explorer, plot_alignment
from course_utils.seq2seq import Seq2SeqAttention, sequence_loss, teacher_forcing_step


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def explorer_redraw_ms(
    batch: int, target_len: int, source_len: int, moves: int = 20, cpu: bool = False
) -> float:
    """Median ms (wall, or CPU time) of a :func:`decoder_step_explorer` redraw as its step moves."""
    torch.manual_seed(0)
    attention = torch.softmax(3 * torch.randn(batch, target_len, source_len), dim=-1)
    labels = [[str(v) for v in range(source_len)]] * batch
    explorer = decoder_step_explorer(
        attention, tokens=labels, expected=list(range(target_len))[::-1]
    )
    slider = explorer.controls["step"]
    for k in range(moves):
        slider.value = (k + 1) % target_len
    seconds = explorer.redraw_cpu_seconds if cpu else explorer.redraw_seconds
    return 1000 * statistics.median(seconds[1:])


def alignment_plot_ms(repeats: int = 5) -> float:
    """Median ms to draw and render one 8 x 8 alignment matrix with labels (a static figure)."""
    from course_utils.style import figure_to_png

    weights = torch.softmax(torch.randn(8, 8), dim=-1)
    return _median_ms(
        lambda: figure_to_png(plot_alignment(weights, expected=range(7, -1, -1))), repeats
    )


def train_step_ms(bidirectional: bool, threads: int, repeats: int = 10) -> float:
    """Median ms of one teacher-forced training step, batch 64, 8 steps, hidden 64, 2 layers."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        model = Seq2SeqAttention(
            target_kind="symbols",
            vocab_size=10,
            hidden_size=64,
            num_layers=2,
            bidirectional=bidirectional,
        )
        optimizer = torch.optim.Adam(model.parameters())
        source = torch.randint(1, 10, (64, 8))
        batch = (source, source.flip(1))

        def step() -> None:
            outputs, target = teacher_forcing_step(model, batch)
            optimizer.zero_grad()
            sequence_loss(outputs, target).backward()
            optimizer.step()

        return _median_ms(step, repeats)
    finally:
        torch.set_num_threads(before)


def main() -> dict[str, float]:
    """Run every measurement, print a small table and return it."""
    results = {
        "explorer redraw, 6 x (8 x 8), median ms": explorer_redraw_ms(6, 8, 8),
        "explorer redraw, 1 x (8 x 30), median ms": explorer_redraw_ms(1, 8, 30),
        "explorer redraw, 6 x (8 x 8), median CPU ms": explorer_redraw_ms(6, 8, 8, cpu=True),
        "explorer redraw, 1 x (8 x 30), median CPU ms": explorer_redraw_ms(1, 8, 30, cpu=True),
        "plot_alignment 8 x 8 + PNG, median ms": alignment_plot_ms(),
    }
    for bidirectional in (False, True):
        for threads in (1, 2):
            name = "bidirectional" if bidirectional else "forward"
            results[f"train step ({name} encoder, {threads} thread(s)), median ms"] = train_step_ms(
                bidirectional, threads
            )
    width = max(map(len, results))
    for name, value in results.items():
        print(f"{name:<{width}}  {value:8.1f}")
    return results


if __name__ == "__main__":
    main()
