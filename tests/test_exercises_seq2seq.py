"""The checkers of notebook 06 fail on its starters, fail on trivial stubs, pass on the solutions,
and name the usual mistakes."""

from __future__ import annotations

import pytest
import torch

from course_utils.exercises import seq2seq as ex
from tests.notebook_tools import assert_checker_contract, find_notebook

NOTEBOOK = find_notebook("06")


def _no_tanh(q, k, W_q, W_k, v):
    return v(W_q(q).unsqueeze(1) + W_k(k)).squeeze(-1)


def _tanh_after_v(q, k, W_q, W_k, v):
    return torch.tanh(v(W_q(q).unsqueeze(1) + W_k(k))).squeeze(-1)


def _summed(q, k, W_q, W_k, v):
    return torch.tanh(W_q(q).unsqueeze(1) + W_k(k)).sum(-1)


def _not_squeezed(q, k, W_q, W_k, v):
    return v(torch.tanh(W_q(q).unsqueeze(1) + W_k(k)))


def _unmasked(scores, values, mask):
    w = torch.softmax(scores, dim=-1)
    return (w.unsqueeze(-1) * values).sum(1), w


def _masked_after_softmax(scores, values, mask):
    w = torch.softmax(scores, dim=-1) * mask
    return (w.unsqueeze(-1) * values).sum(1), w


def _softmax_over_batch(scores, values, mask):
    w = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=0)
    return (w.unsqueeze(-1) * values).sum(1), w


def _mean_context(scores, values, mask):
    return values.mean(dim=1), ex.reference_masked_attention(scores, values, mask)[1]


WRONG = {
    "additive_scores": {
        "no tanh": (_no_tanh, "apply torch.tanh"),
        "tanh after v": (_tanh_after_v, "tanh goes inside"),
        "sum instead of v": (_summed, "project with v"),
        "v's axis kept": (_not_squeezed, ".squeeze(-1)"),
    },
    "masked_attention": {
        "no mask": (_unmasked, "-inf"),
        "mask after softmax": (_masked_after_softmax, "mask before the softmax"),
        "softmax over the batch": (_softmax_over_batch, "dim=-1"),
        "mean of the values": (_mean_context, "not a plain mean"),
    },
    "make_decoder_inputs": {
        "unshifted target": (lambda target, start: target, "a leak"),
        "shifted left": (
            lambda target, start: torch.cat([target[:, 1:], start.unsqueeze(1)], dim=1),
            "the first decoder input is `start`",
        ),
        "float ids": (lambda t, s: ex.reference_shift_right(t, s).float(), "int64"),
        "no start token": (lambda target, start: target[:, :-1], "prepend start"),
        "hard-coded start id": (
            lambda target, start: ex.reference_shift_right(target, torch.full_like(start, 10)),
            "not a hard-coded <bos> id",
        ),
        "row 0's start for every row": (
            lambda target, start: ex.reference_shift_right(target, start[0].expand_as(start)),
            "not start[0]",
        ),
    },
}

CASES = [
    # (starter tag, function name in the starter, checker, reference solution)
    (
        "starter-additive-scores",
        "additive_scores",
        ex.check_additive_scores,
        ex.reference_additive_scores,
    ),
    (
        "starter-masked-attention",
        "masked_attention",
        ex.check_masked_attention,
        ex.reference_masked_attention,
    ),
    ("starter-shift-right", "make_decoder_inputs", ex.check_shift_right, ex.reference_shift_right),
]


def text(feedback) -> str:
    return str(feedback)


@pytest.mark.parametrize(("tag", "name", "checker", "solution"), CASES)
def test_checker_contract(tag, name, checker, solution):
    # trivial stubs of each exercise are tested one by one below, with the hints they should get
    assert_checker_contract(NOTEBOOK, tag, name, checker, solution, wrong_answers=WRONG[name])
    assert "all checks passed" in text(checker(solution))


def test_additive_scores_stubs_and_mistakes():
    zeros = lambda q, k, W_q, W_k, v: torch.zeros(k.shape[:2])  # noqa: E731
    assert not ex.check_additive_scores(zeros).passed

    def no_tanh(q, k, W_q, W_k, v):
        return v(W_q(q).unsqueeze(1) + W_k(k)).squeeze(-1)

    fb = ex.check_additive_scores(no_tanh)
    assert not fb.passed and "apply torch.tanh" in text(fb)

    def not_squeezed(q, k, W_q, W_k, v):
        return v(torch.tanh(W_q(q).unsqueeze(1) + W_k(k)))

    fb = ex.check_additive_scores(not_squeezed)
    assert not fb.passed and ".squeeze(-1)" in text(fb)

    def swapped(q, k, W_q, W_k, v):  # W_k applied to nothing useful: query and keys mixed up
        return v(torch.tanh(W_q(q).unsqueeze(1) + W_k(k).flip(1))).squeeze(-1)

    assert not ex.check_additive_scores(swapped).passed

    def crashes(q, k, W_q, W_k, v):
        return v(torch.tanh(W_q(q) + W_k(k))).squeeze(-1)  # (B, A) + (B, S, A) fails to broadcast

    fb = ex.check_additive_scores(crashes)
    assert not fb.passed and "raised RuntimeError" in text(fb)


def test_masked_attention_stubs_and_mistakes():
    def uniform(scores, values, mask):
        w = torch.full_like(scores, 1 / scores.shape[1])
        return (w.unsqueeze(-1) * values).sum(1), w

    assert not ex.check_masked_attention(uniform).passed

    def unmasked(scores, values, mask):
        w = torch.softmax(scores, dim=-1)
        return (w.unsqueeze(-1) * values).sum(1), w

    fb = ex.check_masked_attention(unmasked)
    assert not fb.passed and "padded steps get weight up to" in text(fb) and "-inf" in text(fb)

    def masked_after_softmax(scores, values, mask):  # zeroed afterwards: rows no longer sum to 1
        w = torch.softmax(scores, dim=-1) * mask
        return (w.unsqueeze(-1) * values).sum(1), w

    fb = ex.check_masked_attention(masked_after_softmax)
    assert not fb.passed and "rows no longer sum to 1" in text(fb)

    fb = ex.check_masked_attention(lambda s, v, m: ex.reference_masked_attention(s, v, m)[1])
    assert not fb.passed and "expected a pair (context, weights)" in text(fb)


def test_shift_right_stubs_and_mistakes():
    fb = ex.check_shift_right(lambda target, start: target)
    assert not fb.passed and "a leak" in text(fb)
    assert not ex.check_shift_right(lambda target, start: torch.zeros_like(target)).passed

    def shifted_left(target, start):
        return torch.cat([target[:, 1:], start.unsqueeze(1)], dim=1)

    fb = ex.check_shift_right(shifted_left)
    assert not fb.passed and "step 0 is fed the start token" in text(fb)

    def float_ids(target, start):
        return ex.reference_shift_right(target, start).float()

    fb = ex.check_shift_right(float_ids)
    assert not fb.passed and "int64" in text(fb)

    fb = ex.check_shift_right(lambda target, start: target[:, :-1])
    assert not fb.passed and "expected (3, 5)" in text(fb)

    def fixed_bos(target, start):  # a hard-coded <bos> of 10 for every row
        return torch.cat([torch.full_like(target[:, :1], 10), target[:, :-1]], dim=1)

    fb = ex.check_shift_right(fixed_bos)
    assert not fb.passed and "fixed id (10)" in text(fb) and "hard-coded" in text(fb)

    def first_start_only(target, start):  # start[0] broadcast to every row
        return torch.cat([start[0].expand(target.shape[0], 1), target[:, :-1]], dim=1)

    fb = ex.check_shift_right(first_start_only)
    assert not fb.passed and "row 0's start" in text(fb) and "start[0]" in text(fb)
