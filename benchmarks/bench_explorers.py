"""Redraw time of every explorer of the course (and of ``inspect``'s views), on synthetic data.

Each explorer is built on data shaped like its notebook's (sizes below), each of its controls is
moved several times, and the median redraw (drawing and rendering the high-DPI PNG) is printed as
wall clock and CPU time of this process (on a shared machine the CPU time is what a redraw costs).
Budget: 100 ms (median). Then the browser's frame cache, as a page that shows each explorer sees
it: every control stepped once (as an arrow key does) with the kernel rendering ahead between
steps; printed: how many of the steps the page already had (shown at once), frames sent per step and
their size. Run: ``python benchmarks/bench_explorers.py``.
"""

from __future__ import annotations

import statistics

import numpy as np
import torch


def _explorers() -> dict:
    from course_utils.alignment_plots import decoder_step_explorer
    from course_utils.attention_plots import attention_explorer
    from course_utils.bert_views import bert_attention_explorer
    from course_utils.encoders import tiny_encoder
    from course_utils.gradient_plots import gradient_explorer
    from course_utils.head_plots import head_explorer
    from course_utils.importance import LayerImportance, layer_names
    from course_utils.importance_plots import importance_explorer
    from course_utils.state_plots import state_explorer
    from course_utils.tracing import trace_lstm

    g = torch.Generator().manual_seed(0)
    lstm = torch.nn.LSTM(8, 16, num_layers=2, bidirectional=True, batch_first=True)
    trace = trace_lstm(lstm, torch.randn(256, 30, 8, generator=g))
    att = torch.softmax(torch.randn(16, 4, 12, 12, generator=g), -1)
    pool = torch.softmax(torch.randn(64, 50, generator=g), -1)
    norms = {
        s: {f"{d} layers": torch.rand(64, 50, generator=g) + 1e-3 for d in (1, 2, 3)}
        for s in ("at init", "trained")
    }
    align = torch.softmax(torch.randn(8, 10, 12, generator=g), -1).numpy()
    imps = {
        m: LayerImportance(m, torch.randn(40, 7, generator=g), layer_names(7))
        for m in ("ablation", "gradient x input")
    }
    texts = ["Profits did not fall, but sales dropped sharply.", "Costs rose.", "Shares hold."]
    return {
        "state (01/02)": state_explorer(trace),
        "attention pooling (05)": attention_explorer(
            {"additive": pool, "mean": torch.full((64, 50), 0.02)}, lengths=[50] * 64
        ),
        "gradient (04)": gradient_explorer(norms),
        "decoder step (06)": decoder_step_explorer(align),
        "heads (07)": head_explorer(att),
        "BERT attention (08)": bert_attention_explorer(tiny_encoder(), texts),
        "importance (09)": importance_explorer(imps),
    }


def _inspected() -> dict:
    """``inspect``'s views of models the course never built (as in tests/test_inspector.py)."""
    from torch import nn
    from transformers import BertConfig, BertModel

    from course_utils.inspector import inspect

    torch.manual_seed(0)
    lstm = nn.LSTM(8, 6, num_layers=2, bidirectional=True)  # time-major
    long = inspect(nn.Sequential(lstm), torch.randn(2000, 2, 8))
    layer = nn.TransformerEncoderLayer(12, 4, dim_feedforward=16, batch_first=True)
    encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    mha = inspect(encoder, torch.randn(4, 10, 12))
    config = BertConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=32,
        max_position_embeddings=520,
    )
    bert = inspect(BertModel(config).eval(), torch.randint(5, 40, (2, 512)))
    return {
        "inspect: LSTM T=2000 (window)": long.views["0"],
        "inspect: TransformerEncoder": mha.views["layers.0.self_attn"],
        "inspect: BERT 512 tokens": bert.views[""],
    }


def _move(explorer, moves: int = 6) -> None:
    for control in explorer.controls.values():
        if control.layout.display == "none":
            continue
        if hasattr(control, "options"):
            values = [o[1] if isinstance(o, tuple) else o for o in control.options]
        elif hasattr(control, "max") and isinstance(control.value, (int, float)):
            values = list(np.linspace(control.min, control.max, moves).astype(type(control.value)))
        else:
            continue
        for v in (values * moves)[:moves]:
            control.value = v


def redraw_times() -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds per redraw of each explorer."""
    out = {}
    for name, ex in (_explorers() | _inspected()).items():
        ex.redraw_seconds.clear()
        ex.redraw_cpu_seconds.clear()
        _move(ex)
        out[name] = statistics.median(ex.redraw_seconds), statistics.median(ex.redraw_cpu_seconds)
    return out


def _step(control) -> bool:
    """Move ``control`` one step, as an arrow key does; False if it has nowhere to go."""
    if control.layout.display == "none":
        return False
    if hasattr(control, "options"):
        n, k = len(control.options), control.index if control.index is not None else -1
        if n < 2:
            return False
        control.index = k + 1 if k + 1 < n else k - 1
    elif isinstance(control.value, bool):
        control.value = not control.value
    elif hasattr(control, "max") and isinstance(control.value, (int, float)):
        step = getattr(control, "step", None) or 1
        up = control.value + step <= control.max
        control.value = control.value + step if up else control.value - step
    else:
        return False
    return True


def frame_cache() -> dict[str, tuple[float, float, float]]:
    """Per explorer: share of steps the page had already, frames sent per step, KB per frame."""
    out = {}
    for name, ex in (_explorers() | _inspected()).items():
        ex.image.send = lambda *args, **kwargs: None  # a page that keeps what it gets
        ex._on_page_msg(ex.image, {"type": "ready", "keys": []}, [])
        ex.prefetch_now()
        ex.frames_sent.clear()
        steps = hits = 0
        for _ in range(2):
            for control in ex.controls.values():
                before = len(ex.frames_sent)
                if not _step(control):
                    continue
                steps += 1
                hits += not any(not pre for _, _, pre in ex.frames_sent[before:])
                ex.prefetch_now()  # what the idle kernel renders ahead before the next key
        sizes = [size for _, size, _ in ex.frames_sent]
        out[name] = (
            hits / max(steps, 1),
            len(sizes) / max(steps, 1),
            statistics.mean(sizes) / 1e3 if sizes else 0.0,
        )
    return out


def main() -> None:
    torch.set_num_threads(1)
    for name, (wall, cpu) in redraw_times().items():
        print(f"{name:26s} redraw median {wall * 1e3:5.0f} ms wall, {cpu * 1e3:5.0f} ms CPU")
    print()
    for name, (hit, per_step, kb) in frame_cache().items():
        print(
            f"{name:26s} frame cache: {hit:4.0%} of steps shown at once, "
            f"{per_step:4.1f} frames sent per step, {kb:5.0f} KB per frame"
        )


if __name__ == "__main__":
    main()
