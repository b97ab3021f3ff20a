"""Tests of course_utils.seq2seq: Bahdanau attention, the encoder-decoder and the seed's wiring."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_utils.masks import lengths_to_mask
from course_utils.metrics import alignment_accuracy
from course_utils.seq2seq import (
    BahdanauAttention,
    SeedBahdanauModel,
    Seq2SeqAttention,
    greedy_step,
    reverse_positions,
    sequence_accuracy,
    sequence_loss,
    shift_right,
    symbol_errors,
    teacher_forcing_step,
)


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    """Seeded, and on one thread: these models run many tiny ops, where threads only wait."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def symbols_model(**kwargs) -> Seq2SeqAttention:
    defaults = dict(target_kind="symbols", vocab_size=7, hidden_size=12, num_layers=2, embed_dim=5)
    return Seq2SeqAttention(**(defaults | kwargs)).eval()


# --- attention ------------------------------------------------------------------------------------


def test_attention_matches_the_equation():
    att = BahdanauAttention(6, 4, 5)
    q, k, v = torch.randn(3, 6), torch.randn(3, 7, 4), torch.randn(3, 7, 2)
    context, weights = att(q, k, v)
    e = att.v(torch.tanh(att.W_q(q)[:, None] + att.W_k(k))).squeeze(-1)  # (B, S)
    torch.testing.assert_close(weights, torch.softmax(e, dim=-1))
    torch.testing.assert_close(context, torch.einsum("bs,bsh->bh", weights, v))
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))


def test_attention_values_default_to_keys_and_projected_keys_are_reused():
    att = BahdanauAttention(6, 4, 5)
    q, k = torch.randn(2, 6), torch.randn(2, 3, 4)
    c1, w1 = att(q, k)
    c2, w2 = att(q, k, k, projected_keys=att.project_keys(k))
    torch.testing.assert_close(c1, c2)
    torch.testing.assert_close(w1, w2)


def test_mask_gives_padding_exactly_zero_and_one_step_exactly_one():
    att = BahdanauAttention(3, 3, 4)
    q, k = torch.randn(3, 3), torch.randn(3, 5, 3)
    mask = lengths_to_mask(torch.tensor([5, 2, 1]), 5)
    context, weights = att(q, k, mask=mask)
    assert (weights[~mask] == 0).all()
    assert weights[2, 0].item() == 1.0
    torch.testing.assert_close(context[2], k[2, 0])
    # the real steps' weights are the softmax over the real steps alone
    _, alone = att(q[1:2], k[1:2, :2])
    torch.testing.assert_close(weights[1:2, :2], alone)


def test_single_key_gives_weight_one_whatever_the_scores():
    att = BahdanauAttention(4, 4, 8)
    q, k = 10 * torch.randn(16, 4), 10 * torch.randn(16, 1, 4)
    scores = att.score(q, k)
    assert scores.std() > 0
    _, w = att(q, k)
    assert torch.equal(w, torch.ones(16, 1))


def test_attention_errors_say_expected_and_got():
    att = BahdanauAttention(6, 4, 5)
    with pytest.raises(ValueError, match=r"query with 6 features, got 3"):
        att(torch.randn(2, 3), torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match=r"keys of shape \(batch, seq_len, key_size\)"):
        att(torch.randn(2, 6), torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"keys with 4 features, got 2"):
        att(torch.randn(2, 6), torch.randn(2, 5, 2))
    with pytest.raises(ValueError, match=r"mask of shape .* = \(2, 5\), got \(2, 4\)"):
        att(torch.randn(2, 6), torch.randn(2, 5, 4), mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="query has batch 3 but keys have batch 2"):
        att(torch.randn(3, 6), torch.randn(2, 5, 4))


# --- encoder-decoder ------------------------------------------------------------------------------


@pytest.mark.parametrize("bidirectional", [False, True])
def test_shapes_symbols_and_values(bidirectional):
    m = symbols_model(bidirectional=bidirectional)
    src = torch.randint(1, 7, (4, 6))
    out = m(src, torch.randint(1, 8, (4, 3)))
    assert out.outputs.shape == (4, 3, 7) and out.attention.shape == (4, 3, 6)
    assert out.predictions.shape == (4, 3) and out.predictions.dtype == torch.long
    v = Seq2SeqAttention(
        target_kind="values", input_size=2, hidden_size=8, num_layers=2, bidirectional=bidirectional
    )
    res = v(torch.randn(4, 9, 2), torch.randn(4, 5))
    assert res.outputs.shape == (4, 5, 1) and res.attention.shape == (4, 5, 9)
    assert res.predictions.shape == (4, 5)
    torch.testing.assert_close(res.attention.sum(-1), torch.ones(4, 5))


def test_step_t_does_not_see_later_decoder_inputs():
    m = symbols_model()
    src = torch.randint(1, 7, (2, 5))
    dec = torch.randint(1, 8, (2, 4))
    changed = dec.clone()
    changed[:, 2:] = (changed[:, 2:] % 6) + 1
    a, b = m(src, dec), m(src, changed)
    torch.testing.assert_close(a.outputs[:, :2], b.outputs[:, :2])
    assert not torch.allclose(a.outputs[:, 2:], b.outputs[:, 2:])


def test_every_source_step_reaches_the_output():
    m = symbols_model()
    src = torch.randint(1, 7, (1, 5))
    out = m(src, torch.full((1, 3), 7)).outputs.sum()
    out.backward()
    grads = m.embedding.weight.grad[src[0]].abs().sum(-1)  # one row per source symbol
    assert (grads > 0).all()


def test_generate_equals_teacher_forcing_on_its_own_predictions():
    for m in (symbols_model(), symbols_model(bidirectional=True)):
        src = torch.randint(1, 7, (3, 6))
        gen = m.generate(src, 5)
        forced = m(src, shift_right(gen.predictions, m.start_inputs(src)))
        torch.testing.assert_close(forced.outputs, gen.outputs)
        torch.testing.assert_close(forced.attention, gen.attention)
    v = Seq2SeqAttention(target_kind="values", input_size=1, hidden_size=8).eval()
    x = torch.randn(2, 7, 1)
    gen = v.generate(x, 4)
    assert torch.equal(v.start_inputs(x), x[:, -1, 0])
    forced = v(x, shift_right(gen.predictions, v.start_inputs(x)))
    torch.testing.assert_close(forced.outputs, gen.outputs)
    # with lengths, the decoder starts from the last *real* value, not from the padding
    assert torch.equal(
        v.start_inputs(x, torch.tensor([3, 7])), torch.stack([x[0, 2, 0], x[1, 6, 0]])
    )


@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_changes_nothing_and_gets_no_attention(bidirectional):
    m = symbols_model(bidirectional=bidirectional)
    short = torch.randint(1, 7, (1, 4))
    padded = torch.cat([short, torch.zeros(1, 3, dtype=torch.long)], dim=1)  # (1, 7)
    other = torch.randint(1, 7, (1, 7))
    batch = torch.cat([padded, other])  # (2, 7)
    dec = torch.randint(1, 8, (2, 3))
    alone = m(short, dec[:1])
    together = m(batch, dec, source_lengths=torch.tensor([4, 7]))
    torch.testing.assert_close(together.outputs[:1], alone.outputs, atol=1e-5, rtol=1e-5)
    assert (together.attention[0, :, 4:] == 0).all()
    torch.testing.assert_close(together.attention[:1, :, :4], alone.attention, atol=1e-5, rtol=1e-5)
    gen = m.generate(batch, 3, source_lengths=torch.tensor([4, 7]))
    assert (gen.attention[0, :, 4:] == 0).all()


def test_decoder_starts_from_the_encoder_state():
    m = symbols_model()
    src = torch.randint(1, 7, (2, 5))
    keys, state, mask = m.encode(src)
    _, (h_n, c_n) = m.encoder(m.embedding(src))
    assert mask is None and keys.shape == (2, 5, 12)
    assert torch.equal(state[0], h_n) and torch.equal(state[1], c_n)
    bi = symbols_model(bidirectional=True)
    keys, (h, c), _ = bi.encode(src)
    assert keys.shape == (2, 5, 24) and h.shape == c.shape == (2, 2, 12)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_query_is_the_decoders_previous_top_layer_state(bidirectional):
    m = symbols_model(bidirectional=bidirectional)
    src, dec = torch.randint(1, 7, (2, 5)), torch.randint(1, 8, (2, 2))
    queries = []
    hook = m.attention.register_forward_pre_hook(lambda mod, args: queries.append(args[0]))
    try:
        m(src, dec)
    finally:
        hook.remove()
    keys, state, _ = m.encode(src)
    _, after_step_0, _ = m.decode_step(dec[:, 0], state, keys, m.attention.project_keys(keys), None)
    assert len(queries) == 2
    torch.testing.assert_close(queries[0], state[0][-1])  # s_{-1}: the encoder's final state
    torch.testing.assert_close(queries[1], after_step_0[0][-1])  # s_0: top layer after step 0


def test_same_seed_same_model_and_outputs():
    src = torch.randint(1, 7, (2, 5))
    torch.manual_seed(3)
    a = symbols_model().generate(src, 4).outputs
    torch.manual_seed(3)
    b = symbols_model().generate(src, 4).outputs
    assert torch.equal(a, b)


def test_model_errors_are_clear():
    with pytest.raises(ValueError, match="target_kind must be 'symbols' or 'values'"):
        Seq2SeqAttention(target_kind="tokens")
    with pytest.raises(ValueError, match="symbols need vocab_size >= 3"):
        Seq2SeqAttention(target_kind="symbols")
    with pytest.raises(ValueError, match="values need input_size >= 1"):
        Seq2SeqAttention(target_kind="values")
    m = symbols_model()
    with pytest.raises(ValueError, match=r"source of shape \(batch, seq_len\) of symbol ids"):
        m(torch.randint(1, 7, (2, 5, 1)), torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="source has batch 2 but decoder_inputs has 3"):
        m(torch.randint(1, 7, (2, 5)), torch.ones(3, 3, dtype=torch.long))
    v = Seq2SeqAttention(target_kind="values", input_size=2)
    with pytest.raises(ValueError, match=r"expected source of shape \(batch, seq_len, 2\), got"):
        v(torch.randn(2, 5, 3), torch.randn(2, 3))
    with pytest.raises(ValueError, match="steps must be at least 1"):
        m.generate(torch.randint(1, 7, (2, 5)), 0)
    with pytest.raises(ValueError, match="last source value"):
        _ = v.bos


# --- helpers --------------------------------------------------------------------------------------


def test_shift_right():
    target = torch.tensor([[3, 1, 4], [1, 5, 9]])
    out = shift_right(target, torch.tensor([7, 7]))
    assert out.tolist() == [[7, 3, 1], [7, 1, 5]] and out.dtype == torch.long
    with pytest.raises(ValueError, match=r"start of shape \(batch,\) = \(2,\), got \(3,\)"):
        shift_right(target, torch.tensor([7, 7, 7]))


def test_losses_and_metrics():
    logits = torch.randn(4, 3, 5)
    target = torch.randint(0, 5, (4, 3))
    torch.testing.assert_close(
        sequence_loss(logits, target), F.cross_entropy(logits.transpose(1, 2), target)
    )
    values, y = torch.randn(4, 3, 1), torch.randn(4, 3)
    torch.testing.assert_close(sequence_loss(values, y), F.mse_loss(values.squeeze(-1), y))
    with pytest.raises(ValueError, match="must share"):
        sequence_loss(logits, target[:, :2])
    right = F.one_hot(target, 5).float()
    right[0, 2] = F.one_hot((target[0, 2] + 1) % 5, 5).float()  # one wrong step in example 0
    assert sequence_accuracy(right, target) == 0.75


def test_reverse_positions():
    assert reverse_positions(4).tolist() == [3, 2, 1, 0]


def test_steps_for_train():
    m = symbols_model()
    src = torch.randint(1, 7, (3, 5))
    tgt = src.flip(1)
    out, t = teacher_forcing_step(m, (src, tgt))
    assert out.shape == (3, 5, 7) and t is tgt
    g, _ = greedy_step(m, (src, tgt))
    torch.testing.assert_close(g, m.generate(src, 5).outputs)


def test_reversal_trains_to_the_anti_diagonal():
    from course_utils.tasks import symbol_task
    from course_utils.training import train

    task = symbol_task(600, 5, 6, task="reverse", seed=1)
    src, tgt = task.x, task.y
    torch.manual_seed(0)
    m = Seq2SeqAttention(
        target_kind="symbols",
        vocab_size=6,
        hidden_size=32,
        num_layers=1,
        embed_dim=8,
        bidirectional=True,
    )
    train(
        m,
        (src[:500], tgt[:500]),
        loss_fn=sequence_loss,
        epochs=6,
        lr=1e-2,
        batch_size=50,
        step=teacher_forcing_step,
        progress=False,
        device="cpu",
    )
    gen = m.generate(src[500:], 5)
    assert (gen.predictions == tgt[500:]).float().mean() > 0.9
    assert alignment_accuracy(gen.attention, reverse_positions(5)) > 0.8


# --- the seed's wiring ----------------------------------------------------------------------------


def test_seed_model_weights_are_one_and_encoder_is_dead():
    m = SeedBahdanauModel(input_size=3, hidden_size=16, output_size=4)
    enc, dec = torch.randn(5, 9, 3), torch.randn(5, 1, 3)
    out, w = m(enc, dec)
    assert out.shape == (5, 4) and torch.equal(w, torch.ones(5, 1))
    assert torch.equal(out, m(torch.randn(5, 9, 3), dec)[0])
    out.sum().backward()
    for module in (m.encoder, m.attention):
        assert all(p.grad is not None and (p.grad == 0).all() for p in module.parameters())
    assert any((p.grad != 0).any() for p in m.decoder.parameters())
    assert m.encoder.num_layers == 1
    with pytest.raises(ValueError, match=r"decoder_inputs of shape \(batch, 1, input_size\)"):
        m(enc, torch.randn(5, 3))


# --- the controls: no attention, uniform attention -----------------------------------------------


def test_attention_free_baseline_sees_the_source_only_through_its_initial_state():
    torch.manual_seed(0)
    m = Seq2SeqAttention(target_kind="symbols", vocab_size=6, hidden_size=8, attend=False)
    src = torch.randint(1, 6, (3, 7))
    out = m(src, shift_right(src, m.start_inputs(src)))
    assert out.outputs.shape == (3, 7, 6) and torch.equal(out.attention, torch.zeros(3, 7, 7))
    out.outputs.sum().backward()
    assert all(p.grad is None or (p.grad == 0).all() for p in m.attention.parameters())
    assert any((p.grad != 0).any() for p in m.encoder.parameters())  # through the initial state


def test_trained_uniform_attention_is_frozen_uniform_and_masks_padding():
    m = symbols_model(bidirectional=True, uniform_attention=True)
    src = torch.randint(1, 7, (3, 6))
    out = m(src, torch.randint(1, 7, (3, 4)))
    torch.testing.assert_close(out.attention, torch.full((3, 4, 6), 1 / 6))
    out.outputs.sum().backward()
    assert all(p.grad is None for p in m.attention.parameters())  # the score is never used
    lengths = torch.tensor([6, 3, 1])
    w = m.generate(src, 2, source_lengths=lengths).attention  # (B, T, S)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 2))
    assert (w[1, :, 3:] == 0).all() and (w[1, :, :3] - 1 / 3).abs().max() < 1e-6
    assert (w[2, :, 0] == 1).all()
    with pytest.raises(ValueError, match="uniform_attention needs attend=True"):
        symbols_model(uniform_attention=True, attend=False)


def test_trained_uniform_model_starts_like_the_learned_one():
    torch.manual_seed(3)
    learned = symbols_model(bidirectional=True)
    torch.manual_seed(3)
    uniform = symbols_model(bidirectional=True, uniform_attention=True)
    for (name, a), (_, b) in zip(
        learned.named_parameters(), uniform.named_parameters(), strict=True
    ):
        assert torch.equal(a, b), name  # the same weights: only the weights over steps differ


@pytest.mark.parametrize(
    "kwargs", [{"attend": False}, {"uniform_attention": True}], ids=["no-attention", "uniform"]
)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_fixed_context_forward_equals_the_step_by_step_decoder(kwargs, bidirectional):
    """Uniform / no attention: teacher forcing runs the decoder in one call; same as the loop."""
    m = symbols_model(bidirectional=bidirectional, **kwargs)
    src = torch.randint(1, 7, (4, 6))
    lengths = torch.tensor([6, 4, 2, 1])
    for source_lengths in (None, lengths):
        gen = m.generate(src, 5, source_lengths=source_lengths)  # the step-by-step loop
        forced = m(src, shift_right(gen.predictions, m.start_inputs(src)), source_lengths)
        torch.testing.assert_close(forced.outputs, gen.outputs)
        torch.testing.assert_close(forced.attention, gen.attention)
        assert torch.equal(forced.predictions, gen.predictions)
    v = Seq2SeqAttention(target_kind="values", input_size=1, hidden_size=8, **kwargs).eval()
    x = torch.randn(2, 7, 1)
    gen = v.generate(x, 4)
    torch.testing.assert_close(
        v(x, shift_right(gen.predictions, v.start_inputs(x))).outputs, gen.outputs
    )


def test_symbol_errors_is_the_share_of_wrong_symbols_per_sequence():
    m = symbols_model()
    src = torch.randint(1, 7, (5, 4))
    pred = m.generate(src, 3).predictions
    target = pred.clone()
    target[0, 0] = (pred[0, 0] % 6) + 1  # one symbol wrong in row 0
    target[1] = (pred[1] % 6) + 1  # every symbol wrong in row 1
    errors = symbol_errors(m, (src, target))
    torch.testing.assert_close(errors, torch.tensor([1 / 3, 1.0, 0.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="target"):
        symbol_errors(m, (src, target[:, 0]))
