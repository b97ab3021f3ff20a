"""LSTM pooling over BERT layers (seed 004): the seed's module, the corrected one, the baselines."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.layer_pooling import (
    LAYER_POOLINGS,
    BiLSTMPooling,
    LastLayerCLS,
    LSTMPooling,
    MeanLayers,
    PooledClassifier,
    ScalarMix,
    cls_from_hidden_states,
    direction_gradients,
    embedding_cls_spread,
    make_classifier,
)

N, L, H, D = 5, 6, 12, 4


@pytest.fixture
def feats() -> torch.Tensor:
    return torch.randn(N, L + 1, H, generator=torch.Generator().manual_seed(0))  # (N, L+1, H)


def test_cls_from_hidden_states_stacks_token_zero_of_every_layer():
    states = tuple(torch.randn(N, 9, H) for _ in range(L + 1))  # (N, T, H) each
    stacked = cls_from_hidden_states(states)
    assert stacked.shape == (N, L + 1, H)
    torch.testing.assert_close(stacked[:, 3], states[3][:, 0])
    with pytest.raises(ValueError, match="tuple of hidden states"):
        cls_from_hidden_states(torch.randn(N, 9, H))


def test_seed_lstm_pooling_is_the_seed_code(feats):
    torch.manual_seed(0)
    pool = LSTMPooling(L, H, lstm_hidden=D).eval()
    # The seed, line by line: layers 1..L, BiLSTM, out[:, -1, :].
    out, _ = pool.lstm(torch.stack([feats[:, i] for i in range(1, L + 1)], dim=1))
    torch.testing.assert_close(pool(feats), out[:, -1, :])
    # It also accepts the tuple of hidden states, as the seed calls it.
    states = tuple(feats[:, k].unsqueeze(1).expand(N, 3, H) for k in range(L + 1))
    torch.testing.assert_close(pool(states), pool(feats))
    assert pool.layer_sequence(feats).shape == (N, L, H)  # the embedding output is skipped


def test_seed_backward_half_reads_only_the_last_layer(feats):
    torch.manual_seed(0)
    pool = LSTMPooling(L, H, lstm_hidden=D)
    grads = direction_gradients(pool.lstm, feats[:, 1:])
    assert torch.all(grads["backward"][:-1] == 0)  # exactly zero, not just small
    assert grads["backward"][-1] > 0
    assert torch.all(grads["forward"] > 0)  # the forward half has read every layer


def test_corrected_pooling_equals_h_n_and_reads_every_layer(feats):
    torch.manual_seed(0)
    pool = BiLSTMPooling(H, D).eval()
    seq = feats[:, 1:]
    out, (h_n, _) = pool.lstm(seq)
    expected = torch.cat([h_n[0], h_n[1]], dim=-1)
    torch.testing.assert_close(pool(feats), expected)
    torch.testing.assert_close(pool(feats), torch.cat([out[:, -1, :D], out[:, 0, D:]], dim=-1))
    # The backward final state (position 0) depends on every layer.
    grads = direction_gradients(pool.lstm, seq, position=0)
    assert torch.all(grads["backward"] > 0)


def test_corrected_pooling_options(feats):
    uni = BiLSTMPooling(H, D, bidirectional=False, first_layer=0).eval()
    assert uni(feats).shape == (N, D) and uni.out_features == D
    _, (h_n, _) = uni.lstm(feats)
    torch.testing.assert_close(uni(feats), h_n[-1])
    with pytest.raises(ValueError, match="first_layer"):
        BiLSTMPooling(H, D, first_layer=-1)


def test_baselines(feats):
    torch.testing.assert_close(LastLayerCLS(H).eval()(feats), feats[:, -1])
    torch.testing.assert_close(MeanLayers(H).eval()(feats), feats[:, 1:].mean(dim=1))
    torch.testing.assert_close(MeanLayers(H, first_layer=0).eval()(feats), feats.mean(dim=1))


def test_scalar_mix_starts_as_the_mean_and_its_weights_are_a_softmax(feats):
    mix = ScalarMix(H, L).eval()
    torch.testing.assert_close(mix(feats), feats[:, 1:].mean(dim=1))
    with torch.no_grad():
        mix.logits.copy_(torch.tensor([0.0, 0, 0, 0, 0, 5.0]))
        mix.gamma.fill_(2.0)
    w = torch.softmax(mix.logits, 0)
    expected = 2.0 * (w.view(1, -1, 1) * feats[:, 1:]).sum(dim=1)
    torch.testing.assert_close(mix(feats), expected)
    full = mix.layer_weights()
    assert full.shape == (L + 1,) and full[0] == 0
    torch.testing.assert_close(full.sum(), torch.tensor(1.0))


@pytest.mark.parametrize("name", LAYER_POOLINGS)
def test_every_strategy_trains_end_to_end(name, feats):
    torch.manual_seed(0)
    model = make_classifier(name, num_layers=L, hidden_size=H, lstm_hidden=D)
    logits = model(feats)
    assert logits.shape == (N, 2)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_make_classifier_rejects_unknown_names():
    with pytest.raises(ValueError, match="choose one of"):
        make_classifier("attention", num_layers=L, hidden_size=H)


def test_pooled_classifier_needs_out_features():
    with pytest.raises(TypeError, match="out_features"):
        PooledClassifier(nn.Identity())


@pytest.mark.parametrize(
    ("module", "bad", "match"),
    [
        (LSTMPooling(L, H, D), torch.randn(N, L + 1), r"\(batch, num_layers \+ 1, hidden_size\)"),
        (LSTMPooling(L, H, D), torch.randn(N, L + 1, H + 1), "hidden_size=12"),
        (LSTMPooling(L, H, D), torch.randn(N, L, H), "only 6"),
        (BiLSTMPooling(H, D), torch.randn(N, L + 1, 3), "hidden_size=3"),
        (ScalarMix(H, L), torch.randn(N, 3, H), "only 3"),
    ],
)
def test_clear_errors_on_bad_input(module, bad, match):
    with pytest.raises(ValueError, match=match):
        module(bad)


def test_direction_gradients_validates():
    with pytest.raises(ValueError, match="bidirectional"):
        direction_gradients(nn.LSTM(H, D, batch_first=True), torch.randn(N, L, H))
    with pytest.raises(ValueError, match=r"\(\*, \*, 12\)"):
        direction_gradients(
            nn.LSTM(H, D, batch_first=True, bidirectional=True), torch.randn(N, L, 3)
        )


def test_embedding_cls_spread_flags_a_constant_layer(feats):
    feats = feats.clone()
    feats[:, 0] = feats[0, 0]  # like BERT's embedding output at [CLS]: the same for every sentence
    spread = embedding_cls_spread(feats)
    assert spread.shape == (L + 1,)
    assert spread[0] == 0 and torch.all(spread[1:] > 0)


def test_layer_standardizer_uses_training_statistics_and_zeroes_constant_features():
    from course_utils.layer_pooling import LayerStandardizer

    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 4, 6, generator=g) * torch.tensor([0.0, 1e-3, 1.0, 5.0]).view(1, 4, 1)
    x = x + 3.0  # layer 0 is constant, like the embedding output's [CLS]
    std = LayerStandardizer.fit(x)
    z = std(x)
    assert torch.equal(z[:, 0], torch.zeros_like(z[:, 0]))
    torch.testing.assert_close(z[:, 1:].mean(0), torch.zeros(3, 6), atol=1e-3, rtol=0)
    torch.testing.assert_close(z[:, 1:].std(0), torch.ones(3, 6), atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="hidden states"):
        std(x[:, :3])


def test_shuffle_layers_breaks_only_the_chosen_layers():
    from course_utils.layer_pooling import shuffle_layers

    x = torch.arange(8 * 3 * 2, dtype=torch.float32).view(8, 3, 2)
    out = shuffle_layers(x, [2], generator=torch.Generator().manual_seed(1))
    assert torch.equal(out[:, :2], x[:, :2]) and not torch.equal(out[:, 2], x[:, 2])
    assert sorted(out[:, 2, 0].tolist()) == sorted(x[:, 2, 0].tolist())  # same vectors, other rows
    assert torch.equal(x, torch.arange(48, dtype=torch.float32).view(8, 3, 2))  # x untouched
    with pytest.raises(ValueError, match="layers must be"):
        shuffle_layers(x, [3])
