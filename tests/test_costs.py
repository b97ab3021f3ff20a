"""course_utils.costs: which fused kernels a call takes, and its multiply-adds counted, not timed."""

from __future__ import annotations

import torch
from torch import nn

from course_utils.bert_lstm import TokenLSTM
from course_utils.costs import counted_cost, fused_kernel_calls, multiply_adds, runs_fast_path
from course_utils.masks import lengths_to_mask
from course_utils.mha_models import SeedLSTMWithAttention

H = 6


def test_runs_fast_path_measures_the_fused_kernel():
    h = torch.randn(2, 5, 8)
    first = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    second = torch.nn.MultiheadAttention(8, 2, batch_first=False).eval()
    assert runs_fast_path(lambda t: first(t, t, t), h)
    assert not runs_fast_path(lambda t: second(t, t, t), h.transpose(0, 1))
    assert not runs_fast_path(lambda t: first.train()(t, t, t), h)
    assert torch._native_multi_head_attention.__name__ == "_native_multi_head_attention"


def test_fused_kernel_calls_counts_and_restores():
    originals = (
        torch._VF.lstm,
        torch._native_multi_head_attention,
        torch.nn.functional.scaled_dot_product_attention,
    )
    h = torch.randn(2, 5, 8)
    lstm = torch.nn.LSTM(8, 8, batch_first=True)
    assert fused_kernel_calls(lstm, h)["lstm"] == 1
    assert fused_kernel_calls(lstm.train(), h, grad=True)["lstm"] == 1
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    assert fused_kernel_calls(lambda t: mha(t, t, t), h)["native MHA"] == 1
    assert sum(fused_kernel_calls(lambda t: mha.train()(t, t, t), h, grad=True).values()) == 0
    sdpa = fused_kernel_calls(lambda t: mha(t, t, t, need_weights=False), h, grad=True)
    assert sdpa["SDPA"] == 1  # the slow path without weights uses the fused attention
    assert (
        torch._VF.lstm,
        torch._native_multi_head_attention,
        torch.nn.functional.scaled_dot_product_attention,
    ) == originals


def test_counted_cost_counts_products_in_either_layout_and_packing_cuts_them():
    import copy

    torch.manual_seed(0)
    x = torch.randn(4, 6, 10)
    model = SeedLSTMWithAttention(10, 16, 1, 2, dropout=0.0)
    time_major = copy.deepcopy(model)
    time_major.lstm.batch_first = time_major.attention.batch_first = False
    b, t, e, i = 4, 6, 16, 10
    lstm = 4 * e * (i + e) * b * t
    attention = 4 * b * t * e * e + 2 * b * t * t * e
    head = b * t * e * i
    for grad in (False, True):  # eval + no grad takes the fused fast path only with batch_first
        first = counted_cost(model.train(grad), x, grad=grad)
        second = counted_cost(time_major.train(grad), x.transpose(0, 1), grad=grad)
        assert first["multiply-adds"] == second["multiply-adds"]
    assert counted_cost(model.eval(), x)["multiply-adds"] == lstm + attention + head
    lengths = torch.tensor([6, 5, 3, 2])
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True)
    assert counted_cost(model.lstm, packed)["multiply-adds"] == 4 * e * (i + e) * int(lengths.sum())
    assert counted_cost(model.lstm, x)["multiply-adds"] == lstm
    assert counted_cost(lambda v: v.t().contiguous(), torch.ones(3, 5))["copied"] == 15


def test_multiply_adds_counts_lstm_steps_packed_or_not_and_linear_layers():
    torch.manual_seed(0)
    x = torch.randn(3, 7, H)
    mask = lengths_to_mask(torch.tensor([5, 2, 4]), 7).long()  # lengths 5, 2, 4 of 7
    model = TokenLSTM(H, (5, 4)).eval()
    per_step = 4 * 5 * (H + 5) + 4 * 4 * (5 + 4)
    head = 3 * 4 * 2  # Linear(4, 2) on 3 rows
    assert multiply_adds(lambda: model(x, mask), model) == 11 * per_step + head  # real steps only
    model.use_mask = False
    assert multiply_adds(lambda: model(x, mask), model) == 21 * per_step + head  # padding too
    lstm = nn.LSTM(H, 5, num_layers=2, bidirectional=True)
    assert multiply_adds(lambda: lstm(x), lstm) == 2 * 21 * 4 * 5 * (H + 5) + 2 * 21 * 4 * 5 * 15
    lin = nn.Linear(H, 3)
    assert multiply_adds(lambda: lin(x)) == 21 * H * 3  # no hook needed: counted by FlopCounterMode
