"""What tracing costs: a traced forward of a 3-layer LSTM against an untraced ``nn.LSTM`` forward.

    python benchmarks/bench_tracing.py

Setting of the course's quality bar: 3 layers, batch 32, input 16, hidden 64, 2 CPU threads; the
traced forward (module outputs *and* every h, c, i, f, g, o) should cost 2x or less the untraced one.
For contrast it also times a step-by-step ``nn.LSTMCell`` replay in Python (the obvious way to get
the gates), and the median redraw time of the notebook-02 state explorer widget.
Prints medians of several repeats; timings are never asserted in tests.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from course_utils.tracing import trace_lstm

SIZES = {"input_size": 16, "hidden_size": 64, "num_layers": 3, "batch": 32}


def _paired_seconds(fns: dict, repeats: int) -> dict[str, list[float]]:
    """Time each function once per round, rounds interleaved, so that every ratio compares calls
    made under the same load (the CPUs are shared; a slow minute hits both sides of a pair)."""
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def cell_replay(lstm: nn.LSTM, x: torch.Tensor) -> list[torch.Tensor]:
    """The slow baseline: every layer, every step through an ``nn.LSTMCell`` in a Python loop."""
    outs, layer_in = [], x
    for layer in range(lstm.num_layers):
        cell = nn.LSTMCell(layer_in.shape[-1], lstm.hidden_size)
        cell.weight_ih.data = getattr(lstm, f"weight_ih_l{layer}")
        cell.weight_hh.data = getattr(lstm, f"weight_hh_l{layer}")
        cell.bias_ih.data = getattr(lstm, f"bias_ih_l{layer}")
        cell.bias_hh.data = getattr(lstm, f"bias_hh_l{layer}")
        h = c = torch.zeros(x.shape[0], lstm.hidden_size)
        hs = []
        for t in range(x.shape[1]):
            h, c = cell(layer_in[:, t], (h, c))
            hs.append(h)
        layer_in = torch.stack(hs, dim=1)
        outs.append(layer_in)
    return outs


def time_tracing(seq_len: int, repeats: int = 21) -> dict[str, float]:
    """Median seconds of untraced, traced and LSTMCell-replay forwards (no grad) at ``seq_len``."""
    torch.manual_seed(0)
    lstm = nn.LSTM(
        SIZES["input_size"], SIZES["hidden_size"], num_layers=SIZES["num_layers"], batch_first=True
    ).eval()
    x = torch.randn(SIZES["batch"], seq_len, SIZES["input_size"])
    with torch.no_grad():
        t = _paired_seconds(
            {"plain": lambda: lstm(x), "traced": lambda: trace_lstm(lstm, x)}, repeats
        )
        replay = _paired_seconds(
            {"plain": lambda: lstm(x), "replay": lambda: cell_replay(lstm, x)}, max(3, repeats // 3)
        )
    med = statistics.median
    return {
        "seq_len": seq_len,
        "untraced_ms": 1e3 * med(t["plain"]),
        "traced_ms": 1e3 * med(t["traced"]),
        "ratio": med(b / a for a, b in zip(t["plain"], t["traced"], strict=True)),
        # least-disturbed runs: on a shared machine the minimum is the steadier estimate
        "ratio_of_min": min(t["traced"]) / min(t["plain"]),
        "cell_replay_ratio": med(
            b / a for a, b in zip(replay["plain"], replay["replay"], strict=True)
        ),
    }


def widget_redraw_median(moves: int = 15) -> tuple[float, float]:
    """Median seconds of a redraw of the notebook-02 state explorer (slider moved ``moves`` times):
    ``(wall, cpu)``; CPU time of this process stays steady when other work loads the machine."""
    from course_utils.state_plots import state_explorer

    torch.manual_seed(0)
    lstm = nn.LSTM(3, 8, num_layers=3, batch_first=True).eval()  # notebook 02's sizes
    explorer = state_explorer(trace_lstm(lstm, torch.randn(6, 16, 3)))
    step = explorer.controls["step"]
    for _ in range(moves):
        step.value = (step.value + 1) % (step.max + 1)
    return (
        statistics.median(explorer.redraw_seconds[1:]),
        statistics.median(explorer.redraw_cpu_seconds[1:]),
    )


def main(steps: tuple[int, ...] = (100, 500)) -> list[dict[str, float]]:
    torch.set_num_threads(2)
    rows = [time_tracing(t, repeats=31 if t <= 100 else 9) for t in steps]
    print(f"tracing cost, {SIZES}, 2 threads, no grad; medians (ratio: median of paired runs)")
    print(
        f"{'seq_len':>8} {'untraced ms':>12} {'traced ms':>10} {'ratio':>7} {'ratio of min':>13}"
        f" {'LSTMCell replay':>16}"
    )
    for r in rows:
        print(
            f"{r['seq_len']:>8} {r['untraced_ms']:>12.2f} {r['traced_ms']:>10.2f} "
            f"{r['ratio']:>6.2f}x {r['ratio_of_min']:>12.2f}x {r['cell_replay_ratio']:>15.2f}x"
        )
    wall, cpu = widget_redraw_median()
    print(f"state explorer redraw median: {1e3 * wall:.0f} ms wall, {1e3 * cpu:.0f} ms CPU")
    return rows


if __name__ == "__main__":
    main()
