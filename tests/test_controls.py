"""course_utils.controls: uniform attention (a copy, or frozen for training) and head ablation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.capture import capture_attention
from course_utils.controls import (
    ablate_heads,
    ablated_states,
    freeze_uniform_attention,
    with_uniform_attention,
)
from course_utils.encoders import encode, tiny_encoder
from course_utils.masks import padding_mask
from course_utils.metrics import masked_mse
from course_utils.mha_models import LSTMAttention, LSTMAttentionFFN
from course_utils.seq2seq import Seq2SeqAttention

TEXTS = ["Profits did not fall.", "Costs rose sharply, but sales fell."]


def test_uniform_attention_copy_and_head_ablation_of_multihead_attention():
    torch.manual_seed(0)
    model = LSTMAttentionFFN(4, hidden_size=8, num_heads=2, output_size=1).eval()
    x = torch.randn(2, 5, 4)
    pad = padding_mask(torch.tensor([5, 3]), 5)
    with torch.no_grad():
        before = model(x, pad)
        uniform = with_uniform_attention(model)
        with capture_attention(uniform) as cap:
            uniform(x, pad)
    w = cap["attention"].weights  # (B, H, T, T)
    torch.testing.assert_close(w[0], torch.full((2, 5, 5), 0.2))
    torch.testing.assert_close(w[1, :, :, :3], torch.full((2, 5, 3), 1 / 3))
    with torch.no_grad():
        assert torch.equal(model(x, pad), before)  # the original is untouched
        weight = model.attention.out_proj.weight
        with ablate_heads(model, [(0, 1)]):
            assert (weight[:, 4:] == 0).all() and (weight[:, :4] != 0).any()
            assert not torch.allclose(model(x, pad), before)
        assert torch.equal(model(x, pad), before)  # restored on exit
    with pytest.raises(ValueError, match="out of range"), ablate_heads(model, [(0, 2)]):
        pass
    with pytest.raises(ValueError, match="no nn.MultiheadAttention"):
        with_uniform_attention(torch.nn.Linear(2, 2))


def test_head_ablation_of_multihead_attention_takes_the_fast_path_too_and_restores_after_an_error():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True).eval()
    h = torch.randn(2, 5, 8)
    with torch.no_grad():
        before, _ = mha(h, h, h, need_weights=False)
        # one head alone: the ablated output is the other head's part of the output projection
        with ablate_heads(mha, [(0, 0)]):
            fast = mha(h, h, h)[0]  # eval, no grad, batch_first: the fused fast path
            slow = mha.train()(h, h, h)[0]  # the Python path
            mha.eval()
        torch.testing.assert_close(fast, slow)
        assert not torch.allclose(fast, before)
    original = mha.out_proj.weight.clone()
    with pytest.raises(RuntimeError, match="inside"), ablate_heads(mha, [(0, 1)]):
        raise RuntimeError("inside")
    assert torch.equal(mha.out_proj.weight, original)


def test_head_ablation_counts_layers_in_module_order():
    torch.manual_seed(0)
    stack = nn.Sequential(nn.MultiheadAttention(4, 2), nn.MultiheadAttention(4, 4))
    first, second = (m.out_proj.weight for m in stack)
    with ablate_heads(stack, [(1, 3), (1, 3)]):  # a repeated pair is ablated once
        assert (second[:, 3:] == 0).all() and (second[:, :3] != 0).all() and (first != 0).all()
    assert (second != 0).all()
    with pytest.raises(ValueError, match=r"layers 0..1, heads 0..1"), ablate_heads(stack, [(0, 2)]):
        pass
    with pytest.raises(TypeError, match="nn.Module"), ablate_heads("bert", [(0, 0)]):
        pass


def test_uniform_attention_needs_an_attention_module_and_says_what_it_found():
    with pytest.raises(
        ValueError, match=r"no nn.MultiheadAttention and no BahdanauAttention.*Linear"
    ):
        with_uniform_attention(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
    torch.manual_seed(0)
    model = LSTMAttention(2, 8, num_heads=2)
    uniform = with_uniform_attention(model)
    assert (uniform.attention.in_proj_weight[:8] == 0).all()
    assert not (model.attention.in_proj_weight[:8] == 0).all()  # the original is untouched
    assert isinstance(uniform, LSTMAttention) and uniform is not model


def test_freeze_uniform_attention_stays_uniform_through_training():
    from course_utils.tasks import marked_value_task
    from course_utils.training import train

    torch.manual_seed(0)
    model = freeze_uniform_attention(LSTMAttention(2, 8, num_heads=2, output_size=1))
    task = marked_value_task(60, 6, min_len=4, seed=0)
    x, y, pad = task.x, task.y, padding_mask(task.lengths, 6)
    before = model.lstm.weight_ih_l0.detach().clone()
    train(model, (x, pad, y), loss_fn=masked_mse, epochs=2, lr=1e-2, batch_size=20, progress=False)
    attention = model.attention
    assert (attention.in_proj_weight[:8] == 0).all() and (attention.in_proj_bias[:8] == 0).all()
    assert not torch.equal(model.lstm.weight_ih_l0, before)  # the rest of the model learned
    with torch.no_grad(), capture_attention(model) as cap:
        model(x[:3], pad[:3])
    w = cap["attention"].weights  # (B, H, T, T)
    real = (~pad[:3]).float()
    expected = (real / real.sum(dim=1, keepdim=True))[:, None, None, :].expand_as(w)
    torch.testing.assert_close(w, expected)


def test_uniform_attention_copy_of_a_seq2seq_model_spreads_weight_evenly():
    torch.manual_seed(0)
    m = Seq2SeqAttention(target_kind="symbols", vocab_size=6, hidden_size=8)
    src = torch.randint(1, 6, (2, 5))
    before = m.generate(src, 5)
    uniform = with_uniform_attention(m).generate(src, 5)
    torch.testing.assert_close(uniform.attention, torch.full((2, 5, 5), 0.2))
    assert not torch.equal(m.attention.v.weight, torch.zeros_like(m.attention.v.weight))
    assert torch.equal(m.generate(src, 5).outputs, before.outputs)
    lengths = torch.tensor([5, 2])
    masked = with_uniform_attention(m).generate(src, 3, source_lengths=lengths).attention
    torch.testing.assert_close(masked[1, :, :2], torch.full((3, 2), 0.5))
    assert (masked[1, :, 2:] == 0).all()
    with pytest.raises(ValueError, match="no BahdanauAttention"):
        with_uniform_attention(torch.nn.Linear(2, 2))


@pytest.fixture
def tiny():
    return tiny_encoder(hidden_size=16, num_layers=2, num_heads=4)


def test_no_heads_ablated_matches_encode(tiny):
    states, mask = ablated_states(tiny, TEXTS)
    ref = encode(tiny, TEXTS, progress=False)
    assert torch.equal(mask, ref.attention_mask)
    torch.testing.assert_close(states, ref.last_hidden_state, atol=1e-5, rtol=1e-4)


def test_ablation_changes_the_states_and_is_undone(tiny):
    before, _ = ablated_states(tiny, TEXTS)
    after, _ = ablated_states(tiny, TEXTS, [(1, 2)])
    assert (after - before).abs().max() > 1e-4
    again, _ = ablated_states(tiny, TEXTS)  # hooks removed on exit
    torch.testing.assert_close(again, before)


def test_ablating_a_head_zeroes_its_slice_of_the_context(tiny):
    seen = {}
    dense = tiny.model.encoder.layer[0].attention.output.dense
    handle = dense.register_forward_pre_hook(lambda m, args: seen.update(x=args[0].clone()))
    try:
        with ablate_heads(tiny, [(0, 1), (0, 3)]):
            ablated_states(tiny, TEXTS)
    finally:
        handle.remove()
    # hooks run in registration order, so ours saw the context before the ablation ran: check the
    # projection's input by running the ablation hook ourselves
    with ablate_heads(tiny, [(0, 1), (0, 3)]):
        (_, hook), *_ = list(dense._forward_pre_hooks.items())
        (out,) = hook(dense, (seen["x"],))
    width = 16 // 4
    assert out[..., width : 2 * width].abs().sum() == 0 and out[..., 3 * width :].abs().sum() == 0
    torch.testing.assert_close(out[..., :width], seen["x"][..., :width])
    assert not dense._forward_pre_hooks


def test_bad_indices_are_explained(tiny):
    with pytest.raises(ValueError, match="out of range"), ablate_heads(tiny, [(2, 0)]):
        pass
    with pytest.raises(ValueError, match="non-empty"):
        ablated_states(tiny, "one string")
