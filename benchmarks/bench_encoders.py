"""What encoding costs: BERT feature extraction (uncached vs cached) and the attention widget redraw.

    python benchmarks/bench_encoders.py [--n 400] [--threads 1]

Encodes ``n`` generated sentences with the packaged all-MiniLM-L6-v2 (6 layers, 384 wide) on the
CPU, once from scratch (for two batch sizes) and once from the cache, and prints sentences per second.
Then moves the notebook-08 attention explorer through layers, heads, sentences and both views and
prints the median redraw time, as wall clock and as CPU time of this process (on a shared machine
the wall clock also counts the time other processes held the cores; the CPU time is what the redraw
costs). Timings are never asserted in tests.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from course_utils.bert_views import bert_attention_explorer
from course_utils.encoders import encode, load_encoder
from course_utils.tasks import sentiment_task


def encoding_rates(n: int, batch_sizes: tuple[int, ...] = (32, 64)) -> list[tuple[str, float]]:
    """Sentences per second for each batch size from scratch, then from the cache."""
    encoder = load_encoder()
    splits = sentiment_task(max(n, 20), seed=1)
    texts = (splits.train[0] + splits.val[0] + splits.test[0])[:n]
    rows = []
    for batch_size in batch_sizes:
        encoder.clear_cache()
        start = time.perf_counter()
        encode(encoder, texts, batch_size=batch_size, progress=False)
        rows.append((f"uncached, batch {batch_size}", n / (time.perf_counter() - start)))
    start = time.perf_counter()
    encode(encoder, texts, progress=False)
    rows.append(("cached (second call)", n / (time.perf_counter() - start)))
    encoder.clear_cache()
    start = time.perf_counter()
    encode(encoder, texts[:32], attentions=True, progress=False)
    rows.append(("uncached with attentions", 32 / (time.perf_counter() - start)))
    return rows


def redraw_times(repeats: int = 2) -> dict[str, tuple[float, float]]:
    """Median (wall, cpu) seconds of a redraw of the attention explorer, per view.

    In each view the controls move through every layer, a few heads (the mean included), both
    settings of "hide [CLS]/[SEP]" and both sentences; the explorer records each redraw.
    """
    encoder = load_encoder()
    explorer = bert_attention_explorer(
        encoder, ["Profits did not fall, but sales dropped sharply.", "Costs rose slightly."]
    )
    controls = explorer.controls
    out = {}
    for view in ("heatmap", "lines"):
        controls["view"].value = view
        first = len(explorer.redraw_seconds)
        for _ in range(repeats):
            for layer in range(encoder.num_layers):
                controls["layer"].value = layer
            for head in ("mean", 3, encoder.num_heads - 1):
                controls["head"].value = head
            controls["hide_special"].value = not controls["hide_special"].value
            controls["sentence"].value = 1 - controls["sentence"].value
        out[view] = (
            statistics.median(explorer.redraw_seconds[first:]),
            statistics.median(explorer.redraw_cpu_seconds[first:]),
        )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="sentences to encode")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"encoding {args.n} sentences, all-MiniLM-L6-v2, {args.threads} CPU thread(s)")
    print(f"{'what':<28}{'sentences/s':>12}")
    for name, rate in encoding_rates(args.n):
        print(f"{name:<28}{rate:>12.0f}")
    print(f"\n{'explorer redraw (median)':<28}{'wall ms':>9}{'cpu ms':>9}")
    for view, (wall, cpu) in redraw_times().items():
        print(f"{view:<28}{wall * 1e3:>9.0f}{cpu * 1e3:>9.0f}")


if __name__ == "__main__":
    main()
