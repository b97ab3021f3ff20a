"""Exercises of notebook 07 (LSTM + multi-head attention): checkers and reference solutions.

1. ``causal_mask(seq_len)``: an ``attn_mask`` that hides the future (judged by what it does in
   ``nn.MultiheadAttention``: booleans and float masks of 0 and ``-inf`` / ``-1e9`` /
   ``torch.finfo(...).min`` all pass).
2. ``padding_mask(lengths, seq_len)``: the boolean ``key_padding_mask`` that hides padding.
3. ``masked_head_weights(mha, x, key_padding_mask)``: per-head attention weights of a padded batch,
   computed by hand from the module's projections with the padded keys masked out.

Each checker runs the learner's function on cases with known answers, compares what it computes with
PyTorch's own ``nn.MultiheadAttention`` on the same weights and inputs, and returns a
:class:`~course_utils.feedback.Feedback` whose hints name the usual mistakes. Exercise 3 hands the
learner a module whose ``forward`` is switched off, so "by hand" cannot be passed by calling it.
Every checker is wrapped in :func:`~course_utils.feedback.checker` (the learner's RNG is untouched).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ..feedback import Feedback, checker, matches, max_difference, ran

__all__ = [
    "check_causal_mask",
    "check_padding_mask",
    "check_masked_head_weights",
    "reference_causal_mask",
    "reference_padding_mask",
    "reference_masked_head_weights",
]


# ---------------------------------------------------------------------------------- references
def reference_causal_mask(seq_len: int) -> torch.Tensor:
    """True above the diagonal: query ``i`` may not look at keys ``j > i``."""
    return torch.ones(seq_len, seq_len, dtype=torch.bool).triu(diagonal=1)


def reference_padding_mask(lengths: torch.Tensor, seq_len: int) -> torch.Tensor:
    """True at the padded steps ``t >= lengths[b]``, shape ``(B, T)``."""
    return torch.arange(seq_len).unsqueeze(0) >= torch.as_tensor(lengths).unsqueeze(1)


def reference_masked_head_weights(
    mha: nn.MultiheadAttention, x: torch.Tensor, key_padding_mask: torch.Tensor
) -> torch.Tensor:
    """Per-head self-attention weights ``(B, H, T, T)`` of a ``batch_first`` module, by hand.

    ``key_padding_mask`` is ``(B, T)``, True at padding: a padded key gets score ``-inf`` before the
    softmax, so its weight is 0 and each query's weights over the real keys sum to 1.
    """
    batch, seq_len, embed_dim = x.shape
    heads = mha.num_heads
    head_dim = embed_dim // heads
    q, k, _ = nn.functional.linear(x, mha.in_proj_weight, mha.in_proj_bias).chunk(3, dim=-1)
    q = q.view(batch, seq_len, heads, head_dim).transpose(1, 2)  # (B, H, T, d)
    k = k.view(batch, seq_len, heads, head_dim).transpose(1, 2)  # (B, H, T, d)
    scores = q @ k.transpose(-2, -1) / math.sqrt(head_dim)  # (B, H, T, T)
    blocked = key_padding_mask[:, None, None, :]  # (B, 1, 1, T): the same keys for every query
    return scores.masked_fill(blocked, float("-inf")).softmax(dim=-1)


# ---------------------------------------------------------------------------------- checkers
def _boolean_mask(
    fb: Feedback, mask, shape: tuple[int, ...], what: str, *, shape_hint: str, dtype_hint: str
) -> torch.Tensor | None:
    """Shared first checks of a mask: a tensor, of ``shape``, boolean. Returns it as bool, or None."""
    if not ran(mask) or not fb.check_tensor(mask):
        return None
    if not fb.check_shape(mask, shape, what, hint=shape_hint):
        return None
    fb.check(
        mask.dtype == torch.bool,
        "the mask is boolean",
        failure=f"the mask has dtype {mask.dtype}, expected torch.bool",
        hint=dtype_hint,
    )
    return mask.bool()


BLOCKING = -1e4
"""A float ``attn_mask`` entry at or below this blocks its key: ``exp`` of the score underflows to 0."""


def _as_blocked(mask: torch.Tensor) -> torch.Tensor | None:
    """The keys an ``attn_mask`` blocks, as booleans (True = blocked), to name a mistake.

    A boolean mask blocks where True. A float mask is *added* to the scores, so it blocks where it is
    very negative (``-inf``, ``-1e9``, ``torch.finfo(...).min``) and keeps where it is 0; any other
    value (a 0/1 mask) only nudges the scores: None.
    """
    if mask.dtype == torch.bool:
        return mask
    if mask.is_floating_point():
        blocked = mask <= BLOCKING
        return blocked if bool((blocked | (mask == 0)).all()) else None
    return None


def _attend(mask: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | str:
    """Output ``(B, T, E)`` and per-head weights ``(B, H, T, T)`` of a fixed module under ``mask``.

    Returns PyTorch's error message instead when the module refuses the mask.
    """
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(x.shape[-1], 2, batch_first=True).eval()
    if mask.is_floating_point():
        mask = mask.float()  # the scores are float32; a float64 mask of the same values is fine
    try:
        with torch.no_grad():
            out, weights = mha(x, x, x, attn_mask=mask, average_attn_weights=False)
    except (RuntimeError, TypeError, ValueError, AssertionError) as error:
        return str(error).splitlines()[0]
    return out, weights


def _same_behaviour(mask: torch.Tensor, x: torch.Tensor) -> tuple[bool, str]:
    """Does ``mask`` make attention compute what the reference causal mask makes it compute?"""
    got = _attend(mask, x)
    if isinstance(got, str):
        return False, got
    want = _attend(reference_causal_mask(x.shape[1]), x)
    assert not isinstance(want, str)
    finite = bool(torch.isfinite(got[0]).all() and torch.isfinite(got[1]).all())
    same = finite and matches(got, want, atol=1e-6)
    return same, "" if finite else "some queries have every key blocked (their outputs are NaN)"


@checker
def check_causal_mask(fn: Callable[[int], torch.Tensor]) -> Feedback:
    """Check ``fn(seq_len) -> (T, T)`` ``attn_mask`` by what it does in ``nn.MultiheadAttention``.

    Any mask that gives the same weights and outputs as the boolean reference passes: booleans,
    float masks of 0 and ``-inf``, ``-1e9`` or ``torch.finfo(...).min``. A mask that does not is
    compared with the usual mistakes (inverted, diagonal blocked, a float mask that only nudges).
    """
    fb = Feedback("Exercise 7.1 - a causal mask")
    mask = fb.call(fn, 5)
    if not ran(mask) or not fb.check_tensor(mask):
        return fb
    if not fb.check_shape(
        mask, (5, 5), "causal_mask(5)", hint="one row per query, one column per key"
    ):
        return fb
    torch.manual_seed(1)
    x = torch.randn(2, 5, 8)  # (B, T, E)
    same, why = _same_behaviour(mask, x)
    kind = "boolean" if mask.dtype == torch.bool else f"float, {mask.dtype}"
    if same:
        fb.check(
            True,
            f"in nn.MultiheadAttention the mask ({kind}) gives the weights and outputs of a "
            "correct causal mask",
        )
    else:
        blocked, expected = _as_blocked(mask), reference_causal_mask(5)
        if mask.dtype != torch.bool and not mask.is_floating_point():
            fb.fail(
                f"nn.MultiheadAttention refuses a mask of dtype {mask.dtype}: {why}",
                "use booleans, True where a query must not attend (or a float mask of 0 and -inf)",
            )
        elif blocked is None:
            fb.fail(
                "the float mask changes the weights but does not block the future",
                "a float attn_mask is *added* to the scores: it blocks only where it is very "
                "negative (-inf, -1e9), so a 0/1 mask only nudges them; use booleans where True "
                "means 'do not attend'",
            )
        elif torch.equal(blocked, ~expected):
            fb.fail(
                "the mask is inverted: it blocks the past and allows the future",
                "in PyTorch a True entry is *blocked*; the future is above the diagonal (j > i)",
            )
        elif torch.equal(blocked, expected | torch.eye(5, dtype=torch.bool)):
            fb.fail(
                "the mask also blocks the diagonal, so a step cannot attend to itself",
                "query i may see keys 0..i, itself included: leave the diagonal unblocked",
            )
        else:
            fb.fail(
                "in nn.MultiheadAttention the mask does not block exactly the keys j > i of each "
                f"query i{': ' + why if why else ''}",
                "row i is query i, column j is key j: block exactly the entries with j > i (above "
                "the diagonal), and nothing else",
            )
        return fb
    one = fb.call(fn, 1)
    if ran(one):
        ok = isinstance(one, torch.Tensor) and tuple(one.shape) == (1, 1)
        ok = ok and _same_behaviour(one, torch.randn(1, 1, 8))[0]
        fb.check(
            ok,
            "causal_mask(1) is a single allowed entry",
            failure="causal_mask(1) is not a single allowed entry",
            hint="build the mask from seq_len, not a fixed size: a one-step sequence has nothing "
            "in its future",
        )
    # In use: the output at step t must not change when later steps change.
    mask6 = fb.call(fn, 6)
    if ran(mask6) and isinstance(mask6, torch.Tensor) and tuple(mask6.shape) == (6, 6):
        x6 = torch.randn(2, 6, 8)
        x6_changed = x6.clone()
        x6_changed[:, 4:] = torch.randn(2, 2, 8)
        a, b = _attend(mask6, x6), _attend(mask6, x6_changed)
        if not isinstance(a, str) and not isinstance(b, str):
            diff = max_difference(a[0][:, :4], b[0][:, :4])
            fb.check(
                diff < 1e-6,
                "in nn.MultiheadAttention, steps 0-3 ignore changes to steps 4-5",
                failure=f"changing steps 4-5 changed the outputs of steps 0-3 by {diff:.3g}",
                hint="the mask must block every later key",
            )
    return fb


@checker
def check_padding_mask(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> Feedback:
    """Check ``fn(lengths, seq_len) -> (B, T)`` bool mask, True at padding."""
    fb = Feedback("Exercise 7.2 - a key padding mask")
    lengths = torch.tensor([3, 5, 1])
    mask = fb.call(fn, lengths, 5)
    mask_bool = _boolean_mask(
        fb,
        mask,
        (3, 5),
        "padding_mask(lengths=[3, 5, 1], seq_len=5)",
        shape_hint="one row per sequence, one column per (padded) step",
        dtype_hint="we ask for a boolean key_padding_mask (a float one is *added* to the scores and "
        "turns off PyTorch's fast path): compare step numbers with lengths, >= is already boolean",
    )
    if mask_bool is None:
        return fb
    expected = reference_padding_mask(lengths, 5)
    if torch.equal(mask_bool, ~expected):
        fb.fail(
            "the mask is inverted: True on the real steps",
            "key_padding_mask is True where a key must be *ignored*, i.e. at padding",
        )
        return fb
    if not fb.check(
        torch.equal(mask_bool, expected),
        "True exactly at the padded steps",
        failure=f"got {mask_bool.int().tolist()}, expected {expected.int().tolist()}",
        hint="step t of sequence b is padding when t >= lengths[b] (lengths count "
        "real steps, indices start at 0)",
    ):
        return fb
    other = fb.call(fn, torch.tensor([2, 2]), 4)
    if ran(other) and isinstance(other, torch.Tensor):
        fb.check(
            tuple(other.shape) == (2, 4)
            and torch.equal(other.bool(), reference_padding_mask(torch.tensor([2, 2]), 4)),
            "uses seq_len, not the longest length (lengths [2, 2], seq_len 4)",
            hint="the padded batch may be longer than its longest sequence: use seq_len columns",
        )
    return fb


class _ByHandOnly(nn.MultiheadAttention):
    """An ``nn.MultiheadAttention`` whose ``forward`` is switched off: the weights must be computed."""

    def forward(self, *args, **kwargs):
        raise RuntimeError(
            "this exercise computes the weights by hand: do not call mha(...) (its forward is "
            "switched off here); start from mha.in_proj_weight and mha.in_proj_bias"
        )


@checker
def check_masked_head_weights(
    fn: Callable[[nn.MultiheadAttention, torch.Tensor, torch.Tensor], torch.Tensor],
) -> Feedback:
    """Check ``fn(mha, x, key_padding_mask) -> (B, H, T, T)`` against PyTorch's own module.

    The learner gets a module whose ``forward`` raises, so calling the module is no way through;
    the reference weights come from ``nn.MultiheadAttention.forward`` on the same parameters and mask.
    The case has 4 sequences and 3 heads (and head_dim 6, T 5: every size differs), so a mask one
    axis short, ``(B, 1, T)``, cannot silently line the batch up with the heads: it raises, and the
    function is run again on 3 sequences to name that mistake. Checked in order: shape, no NaN rows,
    zero weight on padded keys, rows summing to 1, the values; each failure names the usual mistake
    it matches (mask ignored, applied after the softmax, inverted, over the queries, one axis short;
    softmax over the queries; result transposed; scale or bias wrong).
    """
    fb = Feedback("Exercise 7.3 - per-head weights of a padded batch, by hand")
    torch.manual_seed(1)
    mha = _ByHandOnly(18, 3, batch_first=True).eval()  # 3 heads of head_dim 6
    with torch.no_grad():
        mha.in_proj_bias.normal_(0, 0.5)  # non-zero biases, so forgetting the query's shows
    x = torch.randn(4, 5, 18)  # 4 sequences (not 3: the batch must not fit the heads' axis)
    mask = reference_padding_mask(torch.tensor([5, 3, 2, 4]), 5)  # (B, T) True at padding
    with torch.no_grad():
        result = fb.call(fn, mha, x, mask.clone())
        expected = nn.MultiheadAttention.forward(
            mha, x, x, x, key_padding_mask=mask, need_weights=True, average_attn_weights=False
        )[1]  # (B, H, T, T)
    if not ran(result):
        _name_a_mask_one_axis_short(fb, fn, mha, x[:3], mask[:3])
        return fb
    if not fb.check_result(
        result,
        (4, 3, 5, 5),
        hint="(batch, num_heads, T, T)",
        known_shapes={
            (4, 5, 5): (
                "got (B, T, T): the heads were averaged",
                "keep one matrix per head: split q and k into (B, H, T, head_dim) before q @ k^T",
            )
        },
    ):
        return fb
    result = result.detach().float()
    named = next(
        (
            hint
            for hint, wrong in _mask_mistakes(mha, x, mask)
            if matches(_nan_marked(result), _nan_marked(wrong))
        ),
        None,
    )
    if not fb.check(
        bool(torch.isfinite(result).all()),
        "no row of weights is NaN",
        failure="some rows of weights are NaN: every key of those queries was blocked",
        hint=named or "block only the padded keys; a query whose keys are all -inf gives NaN",
    ):
        return fb
    on_padding = result.masked_select(mask[:, None, None, :].expand_as(result))
    if not fb.check(
        float(on_padding.abs().max()) < 1e-6,
        "padded keys get weight 0",
        failure=f"padded keys get weights up to {float(on_padding.abs().max()):.3g}",
        hint=named or "fill the scores of the padded keys with -inf before the softmax",
    ):
        return fb
    rows = result.sum(dim=-1)
    if not fb.check(
        matches(rows, torch.ones_like(rows), atol=1e-4),
        "each query's weights sum to 1",
        hint=named or "softmax over the last axis (the keys), after masking the scores",
    ):
        return fb
    if not fb.check_close(
        result,
        expected,
        "the weights (against nn.MultiheadAttention's, average_attn_weights=False)",
        hint="in_proj_weight stacks W_q, W_k, W_v as rows (3 * embed_dim, embed_dim); project with "
        "F.linear, split into q, k, v, then into heads of head_dim = embed_dim // num_heads",
    ):
        fb.name_mistake(result, _head_weights_mistakes(mha, x, mask))
    return fb


ONE_AXIS_SHORT = (
    "the mask is one axis short: key_padding_mask[:, None, :] is (B, 1, T), and against scores "
    "(B, H, T, T) it lines the batch up with the heads (here 4 sequences, 3 heads, so PyTorch "
    "refuses; with as many sequences as heads it would run and be wrong): give it a new axis for "
    "the heads and one for the queries, (B, 1, 1, T)"
)
"""The hint for a ``(B, 1, T)`` mask: named by re-running the learner's function with ``B == H``."""


def _name_a_mask_one_axis_short(
    fb: Feedback,
    fn: Callable[[nn.MultiheadAttention, torch.Tensor, torch.Tensor], torch.Tensor],
    mha: nn.MultiheadAttention,
    x: torch.Tensor,
    mask: torch.Tensor,
) -> None:
    """The learner's function raised: if, with as many sequences as heads, it computes what a
    ``(B, 1, T)`` mask computes (sequence h's padding applied to head h), give the hint that says so.

    The re-run is silent: its own error, if any, is not reported (the first one already was).
    """
    if x.shape[0] != mha.num_heads:
        raise ValueError("the re-run needs as many sequences as heads")
    try:
        with torch.no_grad():
            again = fn(mha, x, mask.clone())
    except Exception:  # the learner's bug, already reported by fb.call
        return
    if not isinstance(again, torch.Tensor):
        return
    with torch.no_grad():
        scores = _scores(mha, x, True, 1 / math.sqrt(x.shape[-1] // mha.num_heads))
        short = mask[:, None, :]  # (B, 1, T) -> broadcast as (1, B=H, 1, T): sequence h on head h
        wrong = scores.masked_fill(short, float("-inf")).softmax(dim=-1)  # -1e9 gives the same
    fb.name_mistake(again.detach().float(), {ONE_AXIS_SHORT: wrong})


def _nan_marked(weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights as (where they are NaN, the values with NaN set to 0), for :func:`matches`.

    A fully blocked row is NaN, and NaN matches nothing; this pair lets a mistake that gives NaN
    rows be recognised by where they are and by every other value.
    """
    return weights.isnan().float(), weights.nan_to_num(nan=0.0)


def _scores(mha: nn.MultiheadAttention, x: torch.Tensor, bias: bool, scale: float) -> torch.Tensor:
    """Per-head scores ``(B, H, T, T)`` before any mask, as a learner might compute them."""
    batch, seq_len, embed_dim = x.shape
    heads, head_dim = mha.num_heads, embed_dim // mha.num_heads
    qkv = nn.functional.linear(x, mha.in_proj_weight, mha.in_proj_bias if bias else None)
    q, k, _ = qkv.chunk(3, dim=-1)
    q = q.view(batch, seq_len, heads, head_dim).transpose(1, 2)  # (B, H, T, d)
    k = k.view(batch, seq_len, heads, head_dim).transpose(1, 2)  # (B, H, T, d)
    return q @ k.transpose(-2, -1) * scale


def _mask_mistakes(
    mha: nn.MultiheadAttention, x: torch.Tensor, mask: torch.Tensor
) -> list[tuple[str, torch.Tensor]]:
    """The weights the usual masking and axis mistakes compute (-inf and -1e9 fills), with hints."""
    ignored = (
        "the mask was ignored: padded keys still get weight; fill their scores with -inf before "
        "the softmax"
    )
    after = (
        "the mask was applied to the weights after the softmax, so the rows no longer sum to 1: "
        "mask the scores before the softmax instead"
    )
    inverted = (
        "the mask is inverted: key_padding_mask is True at padding, so block the keys where it "
        "is True"
    )
    on_queries = (
        "the mask was put on the queries: it hides keys, the last axis; broadcast it as "
        "key_padding_mask[:, None, None, :]"
    )
    over_queries = (
        "the softmax ran over the queries (dim=-2): each query's weights lie along the last "
        "axis, over the keys, so take softmax(dim=-1)"
    )
    transposed = (
        "the result is transposed: weights[b, h, i, j] is how much query i (a row) attends to "
        "key j (a column), so return q @ k^T's layout, not its transpose"
    )
    with torch.no_grad():
        scores = _scores(mha, x, True, 1 / math.sqrt(x.shape[-1] // mha.num_heads))
        keys, queries = mask[:, None, None, :], mask[:, None, :, None]  # (B, 1, 1, T), (B, 1, T, 1)
        plain = scores.softmax(dim=-1)
        mistakes = [(ignored, plain), (after, plain.masked_fill(keys, 0.0))]
        for fill in (float("-inf"), -1e9):
            masked = scores.masked_fill(keys, fill)
            mistakes.append((inverted, scores.masked_fill(~keys, fill).softmax(dim=-1)))
            mistakes.append((on_queries, scores.masked_fill(queries, fill).softmax(dim=-1)))
            mistakes.append((over_queries, masked.softmax(dim=-2)))
            mistakes.append((transposed, masked.softmax(dim=-1).transpose(-2, -1)))
    return mistakes


def _head_weights_mistakes(
    mha: nn.MultiheadAttention, x: torch.Tensor, mask: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The weights the usual projection mistakes compute (mask right), each keyed by its hint."""
    embed_dim = x.shape[-1]
    head_dim = embed_dim // mha.num_heads
    blocked = mask[:, None, None, :]  # (B, 1, 1, T)
    with torch.no_grad():

        def weights(bias: bool, scale: float) -> torch.Tensor:
            scores = _scores(mha, x, bias, scale)
            return scores.masked_fill(blocked, float("-inf")).softmax(dim=-1)

        return {
            "divide the scores by sqrt(head_dim) (not sqrt(embed_dim), and not skipped)": weights(
                True, 1.0
            ),
            "scale by sqrt(head_dim) = sqrt(embed_dim // num_heads), not sqrt(embed_dim)": weights(
                True, 1 / math.sqrt(embed_dim)
            ),
            "add in_proj_bias: q = x @ W_q.T + b_q (F.linear(x, in_proj_weight, in_proj_bias))": (
                weights(False, 1 / math.sqrt(head_dim))
            ),
        }
