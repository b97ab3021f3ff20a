"""Attention pooling: the seed's layer as written, the corrected masked layer, PooledLSTM, the task."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_utils.attention_pooling import (
    AdditiveAttentionPooling,
    PooledLSTM,
    SeedAttentionLayer,
)
from course_utils.masks import lengths_to_mask
from course_utils.tasks import padded_adding_problem


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
    task = padded_adding_problem(5, 10, seed=0)
    x, lengths = task.x, task.lengths
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
    task = padded_adding_problem(4, 12, seed=3)
    x, lengths = task.x, task.lengths
    out = model(x, lengths)
    for i, n in enumerate(lengths.tolist()):
        _, (h_n, _) = model.lstm(x[i : i + 1, :n])
        torch.testing.assert_close(out[i], model.head(h_n[-1])[0, 0])
    # No lengths: the last step of the padded tensor, as Keras return_sequences=False.
    torch.testing.assert_close(model(x), model.head(model.lstm(x)[0][:, -1]).squeeze(-1))


def test_masked_models_ignore_extra_padding_and_the_seed_layer_does_not():
    task = padded_adding_problem(6, 10, seed=1)
    x, lengths = task.x, task.lengths
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
