"""Attention pooling: the seed's layer as written, the corrected masked layer, PooledLSTM, the task."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_utils.attention_pooling import (
    AdditiveAttentionPooling,
    PooledLSTM,
    SeedAttentionLayer,
    attention_mass,
    context_share,
    deviation_share,
    lengths_to_mask,
    masked_softmax,
    padded_adding_problem,
    r_squared,
)


@pytest.fixture
def h():
    return torch.randn(4, 9, 6, generator=torch.Generator().manual_seed(0))


def test_seed_layer_computes_the_keras_formula(h):
    torch.manual_seed(0)
    layer = SeedAttentionLayer(hidden_size=6, units=5)
    context, weights = layer(h)
    # The Keras code, written out with the layer's own weights.
    score = torch.tanh(
        F.linear(h, layer.W1.weight, layer.W1.bias) + F.linear(h, layer.W2.weight, layer.W2.bias)
    )
    a = torch.softmax(F.linear(score, layer.V.weight, layer.V.bias), dim=1)  # (B, T, 1), axis=1
    torch.testing.assert_close(weights, a.squeeze(-1))
    torch.testing.assert_close(context, (a * h).sum(dim=1))
    assert context.shape == (4, 6) and weights.shape == (4, 9)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(4))


def test_w1_plus_w2_is_one_layer_and_v_bias_is_dead(h):
    torch.manual_seed(1)
    seed = SeedAttentionLayer(6, 5)
    pool = AdditiveAttentionPooling(6, 5)
    with torch.no_grad():
        pool.proj.weight.copy_(seed.W1.weight + seed.W2.weight)
        pool.proj.bias.copy_(seed.W1.bias + seed.W2.bias)
        pool.query.weight.copy_(seed.V.weight)
    torch.testing.assert_close(pool(h)[1], seed(h)[1])
    torch.testing.assert_close(pool(h)[0], seed(h)[0])
    n_seed = sum(p.numel() for p in seed.parameters())
    n_pool = sum(p.numel() for p in pool.parameters())
    assert (n_seed, n_pool) == (2 * (6 * 5 + 5) + 5 + 1, 6 * 5 + 5 + 5)


def test_lengths_to_mask_and_its_errors():
    assert lengths_to_mask(torch.tensor([2, 3]), 4).tolist() == [
        [True, True, False, False],
        [True, True, True, False],
    ]
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 4\]"):
        lengths_to_mask(torch.tensor([0, 5]), 4)
    with pytest.raises(ValueError, match="1-D"):
        lengths_to_mask(torch.ones(2, 2, dtype=torch.long), 4)


def test_masked_softmax_gives_padding_exactly_zero():
    scores = torch.randn(3, 5)
    mask = lengths_to_mask(torch.tensor([5, 2, 1]), 5)
    w = masked_softmax(scores, mask)
    assert torch.all(w[~mask] == 0)
    torch.testing.assert_close(w.sum(dim=1), torch.ones(3))
    torch.testing.assert_close(w[1, :2], torch.softmax(scores[1, :2], dim=0))
    torch.testing.assert_close(masked_softmax(scores), torch.softmax(scores, dim=-1))
    with pytest.raises(ValueError, match="at least one real"):
        masked_softmax(scores, torch.zeros(3, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"expected|got \(3, 4\)"):
        masked_softmax(scores, mask[:, :4])


def test_masked_pooling_of_a_padded_batch_equals_each_sequence_alone(h):
    torch.manual_seed(2)
    pool = AdditiveAttentionPooling(6)
    lengths = torch.tensor([9, 4, 1, 6])
    mask = lengths_to_mask(lengths, 9)
    padded = h.masked_fill(~mask.unsqueeze(-1), 123.0)  # padding values must not matter at all
    context, weights = pool(padded, mask)
    for i, n in enumerate(lengths.tolist()):
        c_alone, w_alone = pool(h[i : i + 1, :n])
        torch.testing.assert_close(context[i], c_alone[0])
        torch.testing.assert_close(weights[i, :n], w_alone[0])
    assert torch.all(weights[~mask] == 0)


def test_layers_reject_wrong_shapes_with_the_fix():
    with pytest.raises(ValueError, match=r"\(\*, \*, 6\).*return_sequences=True"):
        AdditiveAttentionPooling(6)(torch.randn(2, 6))
    with pytest.raises(ValueError, match=r"\(\*, \*, 6\)"):
        SeedAttentionLayer(6, 4)(torch.randn(2, 3, 5))


@pytest.mark.parametrize("pooling", ["last", "mean", "seed", "seed_masked", "additive"])
def test_pooled_lstm_shapes_and_weights(pooling):
    torch.manual_seed(0)
    model = PooledLSTM(2, 8, num_layers=2, pooling=pooling)
    x, lengths, _, _ = padded_adding_problem(5, 10, seed=0)
    out, w = model.forward_with_weights(x, lengths)
    assert out.shape == (5,)
    if pooling == "last":
        assert w is None
    else:
        assert w.shape == (5, 10)
        torch.testing.assert_close(w.sum(dim=1), torch.ones(5))
    assert PooledLSTM(2, 8, pooling=pooling, output_size=3)(x, lengths).shape == (5, 3)


def test_last_step_pooling_equals_nn_lstm_on_the_unpadded_sequence():
    torch.manual_seed(0)
    model = PooledLSTM(2, 8, num_layers=2, pooling="last")
    x, lengths, _, _ = padded_adding_problem(4, 12, seed=3)
    out = model(x, lengths)
    for i, n in enumerate(lengths.tolist()):
        _, (h_n, _) = model.lstm(x[i : i + 1, :n])
        torch.testing.assert_close(out[i], model.head(h_n[-1])[0, 0])
    # No lengths: the last step of the padded tensor, as Keras return_sequences=False.
    torch.testing.assert_close(model(x), model.head(model.lstm(x)[0][:, -1]).squeeze(-1))


def test_masked_models_ignore_extra_padding_and_the_seed_layer_does_not():
    x, lengths, _, _ = padded_adding_problem(6, 10, seed=1)
    longer = F.pad(x, (0, 0, 0, 5))
    drift = {}
    for pooling in ("last", "mean", "additive", "seed_masked", "seed"):
        torch.manual_seed(0)
        model = PooledLSTM(2, 8, pooling=pooling)
        with torch.no_grad():
            drift[pooling] = (model(longer, lengths) - model(x, lengths)).abs().max().item()
    assert drift["last"] == drift["mean"] == 0.0
    assert drift["additive"] < 1e-6 and drift["seed_masked"] < 1e-6  # the mask, whatever the layer
    assert drift["seed"] > 1e-4


def test_pooled_lstm_errors():
    with pytest.raises(ValueError, match="pooling must be one of"):
        PooledLSTM(2, 8, pooling="max")
    with pytest.raises(ValueError, match=r"\(\*, \*, 2\), got \(3, 5, 4\)"):
        PooledLSTM(2, 8)(torch.randn(3, 5, 4))


def test_padded_adding_problem_is_seeded_and_correct():
    x, lengths, y, pos = padded_adding_problem(200, 20, seed=4)
    x2, *_ = padded_adding_problem(200, 20, seed=4)
    assert torch.equal(x, x2)
    assert x.shape == (200, 20, 2) and lengths.shape == y.shape == (200,) and pos.shape == (200, 2)
    assert int(lengths.min()) >= 10 and int(lengths.max()) <= 20
    rows = torch.arange(200)
    half = lengths // 2
    assert (
        torch.all(pos[:, 0] < half)
        and torch.all(pos[:, 1] >= half)
        and torch.all(pos[:, 1] < lengths)
    )
    assert torch.all(x[..., 1].sum(dim=1) == 2)
    torch.testing.assert_close(y, x[rows, pos[:, 0], 0] + x[rows, pos[:, 1], 0])
    pad = ~lengths_to_mask(lengths, 20)
    assert torch.all(x[pad] == 0)
    with pytest.raises(ValueError, match="min_len"):
        padded_adding_problem(5, 10, min_len=11)


def test_attention_mass():
    lengths = torch.tensor([4, 8])
    uniform = masked_softmax(torch.zeros(2, 8), lengths_to_mask(lengths, 8))
    pos = torch.tensor([[0, 3], [1, 6]])
    torch.testing.assert_close(attention_mass(uniform, pos), 2 / lengths.float())
    with pytest.raises(ValueError, match="same batch"):
        attention_mass(uniform, pos[:1])


def test_seed_layer_with_a_mask_keeps_its_parameters_and_zeroes_padding():
    torch.manual_seed(0)
    layer = SeedAttentionLayer(6, 4)
    h = torch.randn(3, 5, 6)
    mask = lengths_to_mask(torch.tensor([5, 3, 1]), 5)
    _, unmasked = layer(h)
    context, masked = layer(h, mask)
    assert torch.all(masked[~mask] == 0) and torch.all(unmasked[~mask] > 0)
    torch.testing.assert_close(masked.sum(dim=1), torch.ones(3))
    alone = layer(h[1:2, :3])[0]  # the masked layer pools a padded sequence as if it were alone
    torch.testing.assert_close(context[1:2], alone)


def test_context_share_follows_where_the_content_is_not_only_the_weights():
    states = torch.zeros(2, 6, 3)
    pos = torch.tensor([[1, 4], [1, 4]])
    uniform = torch.full((2, 6), 1 / 6)
    # Content only at the relevant steps: uniform weights still draw all of it from them.
    states[:, 1] = torch.tensor([1.0, -2.0, 0.5])
    states[:, 4] = -states[:, 1]  # the average state stays 0
    assert torch.allclose(context_share(uniform, states, pos), torch.ones(2))
    # Content everywhere alike: uniform weights give the relevant steps their share 2/6 ...
    spread = torch.randn(2, 6, 3, generator=torch.Generator().manual_seed(0))
    spread = spread / spread.norm(dim=-1, keepdim=True) * 2  # every |h_t - 0| equal ...
    spread[:, ::2] *= -1  # ... around an average of exactly zero
    spread[:, 1::2] = -spread[:, ::2]
    torch.testing.assert_close(context_share(uniform, spread, pos), torch.full((2,), 2 / 6))
    # ... and weights on the relevant steps take all of it.
    focused = torch.zeros(2, 6)
    focused[:, [1, 4]] = 0.5
    torch.testing.assert_close(context_share(focused, spread, pos), torch.ones(2))
    # Padding (outside `real`) does not move the average state.
    real = lengths_to_mask(torch.tensor([6, 6]), 6)
    torch.testing.assert_close(context_share(uniform, spread, pos, real), torch.full((2,), 2 / 6))
    with pytest.raises(ValueError, match="same batch"):
        context_share(uniform[:1], spread, pos)


def test_mean_target_is_the_average_of_the_real_values_with_the_same_inputs():
    x, lengths, y, pos = padded_adding_problem(50, 12, seed=3)
    xm, lm, ym, pm = padded_adding_problem(50, 12, seed=3, target="mean")
    assert torch.equal(x, xm) and torch.equal(lengths, lm) and torch.equal(pos, pm)
    expected = torch.stack([x[i, : lengths[i], 0].mean() for i in range(50)])
    torch.testing.assert_close(ym, expected)
    assert not torch.allclose(y, ym)
    with pytest.raises(ValueError, match="target"):
        padded_adding_problem(5, 10, target="max")


def test_deviation_share_is_the_old_context_share_and_blind_to_the_values():
    assert deviation_share is context_share
    # The hostile case: states that stand out at the marked steps but carry no value at all.
    states = torch.zeros(3, 6, 2)
    states[:, [1, 4], 1] = 1.0  # a "marker" unit only; the value unit is 0 everywhere
    focused = torch.zeros(3, 6)
    focused[:, [1, 4]] = 0.5
    pos = torch.tensor([[1, 4]] * 3)
    torch.testing.assert_close(deviation_share(focused, states, pos), torch.ones(3))
    # ... yet the context is the same for every example, so no readout predicts a varying target.
    context = torch.einsum("bt,bth->bh", focused, states)
    assert torch.all(context == context[0])


def test_r_squared():
    y = torch.tensor([0.0, 1.0, 2.0, 3.0])
    assert r_squared(y, y) == 1.0
    assert r_squared(torch.full((4,), y.mean().item()), y) == 0.0
    assert r_squared(-y, y) < 0
    with pytest.raises(ValueError, match="constant"):
        r_squared(y, torch.ones(4))
    with pytest.raises(ValueError, match="one prediction per target"):
        r_squared(y[:3], y)
