"""Exercises of notebook 08 (BERT + LSTM): checkers with feedback, and reference solutions.

1. ``masked_mean_pool(x, mask)``: average the real tokens only (seed 000's pooling, corrected).
2. ``last_real_output(outputs, mask)``: each sentence's LSTM output at its own last real token,
   the alternative to packing (``outputs[:, -1]`` reads padding).
3. ``attention_received(weights, key)``: how much each layer's heads attend to one token.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from ..feedback import Feedback, checker, ran

__all__ = [
    "check_attention_received",
    "check_last_real_output",
    "check_masked_mean_pool",
    "reference_attention_received",
    "reference_last_real_output",
    "reference_masked_mean_pool",
]


def _padded_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Token states ``(4, 7, 5)`` with lengths 7, 4, 2, 5 and a right-padded mask ``(4, 7)``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 7, 5, generator=g)
    lengths = torch.tensor([7, 4, 2, 5])
    mask = (torch.arange(7).unsqueeze(0) < lengths.unsqueeze(1)).long()  # (4, 7)
    return x, mask


# --- exercise 1 --------------------------------------------------------------------------------


def reference_masked_mean_pool(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Reference: ``(N, T, H)``, ``(N, T)`` -> ``(N, H)``, the mean over real tokens."""
    m = mask.to(x.dtype).unsqueeze(-1)  # (N, T, 1)
    return (x * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


@checker
def check_masked_mean_pool(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Feedback:
    """Check the learner's masked mean: shape, values, and blindness to what the padding holds."""
    fb = Feedback("Exercise 8.1 - masked mean pooling")
    x, mask = _padded_batch(1)
    out = fb.call(fn, x, mask)
    if not ran(out) or not fb.check_tensor(out):
        return fb
    if not fb.check_shape(
        out, (4, 5), hint="average over the token axis (dim=1): (N, T, H) -> (N, H)"
    ):
        return fb
    expected = reference_masked_mean_pool(x, mask)
    m = mask.to(x.dtype).unsqueeze(-1)  # (N, T, 1)
    mistakes = {
        "the result equals x.mean(dim=1): the padding is averaged in; multiply by the mask "
        "before summing, and divide by the number of real tokens": x.mean(dim=1),
        "the result is the masked sum: you did not divide by the number of real tokens; divide "
        "the sum by mask.sum(dim=1), the number of real tokens of each row": (x * m).sum(dim=1),
        "the masked sum divided by T: the padding still counts in the denominator; divide by "
        "the number of real tokens, mask.sum(dim=1), not by T": (x * m).sum(dim=1) / x.shape[1],
    }
    if not fb.check_close(
        out,
        expected,
        "the pooled vectors",
        atol=1e-5,
        hint="sum x * mask over dim=1, then divide by mask.sum(dim=1) (keep dims with "
        "unsqueeze(-1) so they broadcast)",
    ):
        fb.name_mistake(out, mistakes, atol=1e-6)
        return fb
    noisy = x.clone()
    noisy[mask == 0] = 1e3  # whatever the padding holds, the mean must not move
    again = fb.call(fn, noisy, mask)
    if ran(again) and isinstance(again, torch.Tensor):
        fb.check_close(
            again,
            expected,
            "the result with junk in the padding",
            atol=1e-4,
            hint="padding positions must get weight 0, whatever their values",
        )
    return fb


# --- exercise 2 --------------------------------------------------------------------------------


def reference_last_real_output(outputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Reference: ``outputs (N, T, H)`` -> ``(N, H)``, the output at each row's last real token."""
    last = mask.long().sum(dim=1) - 1  # (N,) index of the last real token
    index = last.view(-1, 1, 1).expand(-1, 1, outputs.shape[-1])  # (N, 1, H)
    return outputs.gather(1, index).squeeze(1)


@checker
def check_last_real_output(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Feedback:
    """Check against packing: for a one-layer LSTM, the last real output equals the packed ``h_n``."""
    fb = Feedback("Exercise 8.2 - the output at the last real token")
    x, mask = _padded_batch(2)
    torch.manual_seed(0)  # the checker decorator restores the learner's RNG afterwards
    lstm = nn.LSTM(5, 3, batch_first=True)
    with torch.no_grad():
        outputs, _ = lstm(x)  # (4, 7, 3): padding steps included, as the seed runs it
        packed = pack_padded_sequence(x, mask.sum(1), batch_first=True, enforce_sorted=False)
        _, (h_n, _) = lstm(packed)
    got = fb.call(fn, outputs, mask)
    if not ran(got) or not fb.check_tensor(got):
        return fb
    if not fb.check_shape(got, (4, 3), hint="one vector per sentence: (N, T, H) -> (N, H)"):
        return fb
    lengths = mask.long().sum(dim=1)
    rows = torch.arange(len(lengths))
    mistakes = {
        "the result equals outputs[:, -1]: three of the four sentences are read at padding; find "
        "each row's last real index as mask.sum(dim=1) - 1 and gather there": outputs[:, -1],
        "off by one: you read the step after the last real token (mask.sum(dim=1) is a length); "
        "the index of the last real token is mask.sum(dim=1) - 1": outputs[
            rows, lengths.clamp_max(outputs.shape[1] - 1)  # one step too far
        ],
        "the result equals outputs[:, 0]: the output after the first token only; an LSTM's "
        "summary of the sentence is at its last real token, mask.sum(dim=1) - 1": outputs[:, 0],
    }
    if not fb.check_close(
        got,
        h_n[-1],
        "the outputs (compared with a packed LSTM's h_n)",
        atol=1e-5,
        hint="the index of the last real token is mask.sum(dim=1) - 1, per row",
    ):
        fb.name_mistake(got, mistakes, atol=1e-6)
    return fb


# --- exercise 3 --------------------------------------------------------------------------------


def reference_attention_received(weights: torch.Tensor, key: int) -> torch.Tensor:
    """Reference: ``weights (L, heads, t, t)`` -> ``(L, heads)``, mean weight the queries give ``key``."""
    return weights[..., key].mean(dim=-1)


@checker
def check_attention_received(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> Feedback:
    """Check the attention a key token receives, per layer and head, averaged over the queries."""
    fb = Feedback("Exercise 8.3 - attention received by one token")
    g = torch.Generator().manual_seed(3)
    weights = torch.softmax(torch.randn(3, 4, 6, 6, generator=g) * 2, dim=-1)  # (L, heads, t, t)
    got = fb.call(fn, weights, 2)
    if not ran(got) or not fb.check_tensor(got):
        return fb
    if not fb.check_shape(
        got, (3, 4), hint="one number per (layer, head): reduce the two token axes"
    ):
        return fb
    mistakes = {
        "you averaged the row of the key (what it attends to), not its column: weights[..., q, k] "
        "is query q attending to key k: take the column [..., key]": weights[..., 2, :].mean(-1),
        "you summed over the queries instead of taking the mean: divide by the number of "
        "queries, .mean(dim=-1), so the value is a weight in [0, 1]": weights[..., 2].sum(-1),
    }
    if not fb.check_close(
        got,
        reference_attention_received(weights, 2),
        "the values",
        atol=1e-5,
        hint="take weights[..., key] (every query's weight on the key), then mean over "
        "the queries (the last axis left)",
    ):
        fb.name_mistake(got, mistakes, atol=1e-6)
        return fb
    other = fb.call(fn, weights, 5)
    if ran(other) and isinstance(other, torch.Tensor):
        fb.check_close(
            other,
            reference_attention_received(weights, 5),
            "the values for another key",
            atol=1e-5,
            hint="use the key argument; do not hard-code an index",
        )
    return fb
