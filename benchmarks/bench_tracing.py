"""What tracing costs: a traced forward of a 3-layer LSTM (and GRU) against an untraced forward.

    python benchmarks/bench_tracing.py

Setting of the course's quality bar (issue 19 item 9): 3 layers, batch 32, 100 steps, input 16,
hidden 64, eval mode, no grad, float32; the traced forward (module outputs *and* every h, c and
gate) should cost 2x or less the untraced one, for ``trace_lstm`` and ``trace_gru``. Printed with
``torch.set_num_threads(1)`` and ``(2)``: the ratio is the median over paired runs (each traced run
timed right after an untraced one, so that both see the same load on shared CPUs), after warm-up.
For contrast it also times a step-by-step ``nn.LSTMCell`` replay in Python (the obvious way to get
the gates). Timings are never asserted in tests.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from course_utils.gru_tracing import trace_gru
from course_utils.tracing import trace_lstm

SIZES = {"input_size": 16, "hidden_size": 64, "num_layers": 3, "batch": 32, "seq_len": 100}
BAR = 2.0


def _paired_seconds(fns: dict[str, Callable], repeats: int) -> dict[str, list[float]]:
    """Time each function once per round, rounds interleaved, so that every ratio compares calls
    made under the same load (the CPUs are shared; a slow minute hits both sides of a pair)."""
    for _ in range(3):
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


def time_tracing(kind: str, threads: int, repeats: int = 31) -> dict[str, float]:
    """Median milliseconds of untraced and traced forwards, and the median paired ratio."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    module_type, trace = {"LSTM": (nn.LSTM, trace_lstm), "GRU": (nn.GRU, trace_gru)}[kind]
    module = module_type(
        SIZES["input_size"], SIZES["hidden_size"], num_layers=SIZES["num_layers"], batch_first=True
    ).eval()
    x = torch.randn(SIZES["batch"], SIZES["seq_len"], SIZES["input_size"])
    with torch.no_grad():
        t = _paired_seconds(
            {"plain": lambda: module(x), "traced": lambda: trace(module, x)}, repeats
        )
    med = statistics.median
    return {
        "kind": kind,
        "threads": threads,
        "untraced_ms": 1e3 * med(t["plain"]),
        "traced_ms": 1e3 * med(t["traced"]),
        "ratio": med(b / a for a, b in zip(t["plain"], t["traced"], strict=True)),
        # least-disturbed runs: on a shared machine the minimum is the steadier estimate
        "ratio_of_min": min(t["traced"]) / min(t["plain"]),
    }


def replay_ratio(threads: int = 2, repeats: int = 7) -> float:
    """Median paired ratio of the ``nn.LSTMCell`` replay to an untraced ``nn.LSTM`` forward."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    lstm = nn.LSTM(
        SIZES["input_size"], SIZES["hidden_size"], num_layers=SIZES["num_layers"], batch_first=True
    ).eval()
    x = torch.randn(SIZES["batch"], SIZES["seq_len"], SIZES["input_size"])
    with torch.no_grad():
        t = _paired_seconds({"plain": lambda: lstm(x), "replay": lambda: cell_replay(lstm, x)}, 7)
    return statistics.median(b / a for a, b in zip(t["plain"], t["replay"], strict=True))


def main() -> list[dict[str, float]]:
    rows = [time_tracing(kind, threads) for kind in ("LSTM", "GRU") for threads in (1, 2)]
    print(f"tracing cost, {SIZES}, eval, no grad, float32; medians of 31 paired runs")
    print(
        f"{'module':>6} {'threads':>8} {'untraced ms':>12} {'traced ms':>10} {'ratio':>7} "
        f"{'ratio of min':>13}  bar {BAR:.1f}x"
    )
    for r in rows:
        print(
            f"{r['kind']:>6} {r['threads']:>8} {r['untraced_ms']:>12.2f} {r['traced_ms']:>10.2f} "
            f"{r['ratio']:>6.2f}x {r['ratio_of_min']:>12.2f}x  "
            f"{'ok' if r['ratio'] <= BAR else 'OVER'}"
        )
    print(f"for contrast, an nn.LSTMCell replay in Python: {replay_ratio():.1f}x (2 threads)")
    return rows


if __name__ == "__main__":
    main()
