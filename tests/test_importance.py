"""Layer importance methods: known answers on models whose importance we can compute by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.importance import (
    LayerImportance,
    ablation_importance,
    gradient_x_input,
    integrated_gradients,
    layer_baseline,
    layer_names,
    mix_weight_importance,
    rank_agreement,
    resample_ablation_importance,
    target_log_odds,
)
from course_utils.layer_pooling import make_classifier

N, K, H = 6, 5, 4


class LinearPerLayer(nn.Module):
    """logits = [0, sum_k w_k . x_k]: the log-odds are linear, so every method has a known answer."""

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.weights = weights  # (K, H)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (self.weights * x).sum(dim=(1, 2))  # (N,)
        return torch.stack([torch.zeros_like(z), z], dim=1)  # (N, 2)


@pytest.fixture
def case():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, K, H, generator=g)
    w = torch.randn(K, H, generator=g)
    w[0] = 0.0  # layer 0 is never read
    return LinearPerLayer(w).eval(), x, w


def test_target_log_odds():
    logits = torch.tensor([[1.0, 3.0], [2.0, 0.0]])
    torch.testing.assert_close(
        target_log_odds(logits, torch.tensor([1, 1])), torch.tensor([2.0, -2.0])
    )
    three = torch.tensor([[0.0, 1.0, 2.0]])
    expected = 2.0 - torch.logsumexp(torch.tensor([0.0, 1.0]), 0)
    torch.testing.assert_close(target_log_odds(three, torch.tensor([2])), expected.view(1))
    with pytest.raises(ValueError, match="targets"):
        target_log_odds(three, torch.tensor([0, 1]))


def test_linear_model_all_methods_give_the_exact_contribution(case):
    model, x, w = case
    targets = torch.ones(N, dtype=torch.long)
    base = x.mean(dim=0)
    exact = (w * (x - base)).sum(dim=-1)  # (N, K): each layer's own share of the log-odds
    for method in (ablation_importance, gradient_x_input, integrated_gradients):
        imp = method(model, x, targets)
        torch.testing.assert_close(imp.scores, exact, atol=1e-5, rtol=1e-5)
        assert torch.all(imp.scores[:, 0] == 0)
        assert imp.layers == ["emb", "1", "2", "3", "4"]


def test_targets_default_to_the_prediction_and_flip_the_sign(case):
    model, x, _ = case
    pred = model(x).argmax(dim=1)
    torch.testing.assert_close(
        ablation_importance(model, x).scores, ablation_importance(model, x, pred).scores
    )
    torch.testing.assert_close(
        ablation_importance(model, x, 1 - pred).scores, -ablation_importance(model, x, pred).scores
    )


def test_integrated_gradients_is_complete_on_a_nonlinear_model():
    torch.manual_seed(0)
    model = make_classifier(
        "BiLSTM final states", num_layers=K - 1, hidden_size=H, lstm_hidden=3
    ).eval()
    x = torch.randn(N, K, H)
    y = torch.randint(0, 2, (N,))
    ig = integrated_gradients(model, x, y, steps=64)
    base = layer_baseline(None, x)
    with torch.no_grad():
        gap = target_log_odds(model(x), y) - target_log_odds(model(base.expand_as(x)), y)
    torch.testing.assert_close(ig.scores.sum(dim=1), gap, atol=5e-3, rtol=0)
    assert ig.meta["completeness_gap"] < 5e-3
    assert torch.all(ig.scores[:, 0] == 0)  # the embedding output is not read (first_layer=1)
    # Batching the path does not change the answer.
    coarse = integrated_gradients(model, x, y, steps=8)
    torch.testing.assert_close(
        integrated_gradients(model, x, y, steps=8, batch_size=7).scores, coarse.scores
    )


def test_ablation_is_not_gradient_x_input_on_a_saturated_model():
    x = torch.zeros(1, 2, 1)
    x[0, 1, 0] = 10.0

    class Saturated(nn.Module):
        def forward(self, feats):
            z = 5 * torch.tanh(feats[:, 1, 0])  # saturated at x = 10: gradient ~ 0
            return torch.stack([torch.zeros_like(z), z], dim=1)

    model = Saturated().eval()
    y = torch.ones(1, dtype=torch.long)
    zero = torch.zeros(2, 1)
    abl = ablation_importance(model, x, y, baseline=zero).scores[0, 1]
    gxi = gradient_x_input(model, x, y, baseline=zero).scores[0, 1]
    ig = integrated_gradients(model, x, y, baseline=zero, steps=200).scores[0, 1]
    assert abl == pytest.approx(5.0, abs=1e-3)
    assert abs(gxi) < 1e-3  # the gradient misses it
    assert ig == pytest.approx(5.0, abs=1e-2)  # integrating along the path recovers it


def test_baselines_and_reference(case):
    model, x, _ = case
    ref = torch.randn(50, K, H)
    torch.testing.assert_close(layer_baseline(ref, x), ref.mean(dim=0))
    torch.testing.assert_close(layer_baseline(None, x, "zero"), torch.zeros(K, H))
    with pytest.raises(ValueError, match="baseline must have shape"):
        layer_baseline(None, x, torch.zeros(3))
    with pytest.raises(ValueError, match="'mean', 'zero'"):
        layer_baseline(None, x, "median")
    with pytest.raises(ValueError, match="reference must be"):
        layer_baseline(torch.randn(3, K, H + 1), x)


def test_methods_refuse_a_model_in_training_mode(case):
    model, x, _ = case
    with pytest.raises(RuntimeError, match=r"model.eval\(\)"):
        ablation_importance(model.train(), x)
    with pytest.raises(ValueError, match="cls_per_layer"):
        gradient_x_input(model.eval(), x[:, 0])


def test_mix_weights():
    mix = make_classifier("scalar mix", num_layers=K - 1, hidden_size=H)
    with torch.no_grad():
        mix.pooling.logits.copy_(torch.tensor([0.0, 1.0, 2.0, 3.0]))
    imp = mix_weight_importance(mix, num_examples=3)
    assert imp.scores.shape == (3, K) and not imp.per_example
    torch.testing.assert_close(imp.scores[1, 1:], torch.softmax(torch.arange(4.0), 0))
    assert imp.scores[0, 0] == 0 and imp.top_layer() == "4"
    with pytest.raises(TypeError, match="ScalarMix"):
        mix_weight_importance(nn.Linear(2, 2))


def test_layer_importance_summaries_and_validation():
    scores = torch.tensor([[0.0, 1.0, -3.0], [0.0, 3.0, -1.0]])
    imp = LayerImportance("x", scores, layer_names(3))
    torch.testing.assert_close(imp.profile(), torch.tensor([0.0, 2.0, -2.0]))
    torch.testing.assert_close(imp.shares(), torch.tensor([0.0, 0.5, 0.5]))
    assert imp.subset([1]).num_examples == 1
    with pytest.raises(ValueError, match=r"\(examples, layers\)"):
        LayerImportance("x", torch.zeros(2, 4), layer_names(3))


def test_rank_agreement():
    a = LayerImportance(
        "a", torch.tensor([[0.0, 1.0, 2.0, 3.0], [0.0, 3.0, 2.0, 1.0]]), layer_names(4)
    )
    b = LayerImportance(
        "b", torch.tensor([[0.0, 10.0, 20.0, 30.0], [0.0, 1.0, 2.0, 3.0]]), layer_names(4)
    )
    torch.testing.assert_close(rank_agreement(a, b, layers=[1, 2, 3]), torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match="at least 2"):
        rank_agreement(a, b, layers=[1])


def test_resample_ablation_on_a_linear_model_is_the_gap_to_the_donors(case):
    model, x, w = case
    targets = torch.ones(N, dtype=torch.long)
    donors = torch.randn(40, K, H, generator=torch.Generator().manual_seed(1))
    imp = resample_ablation_importance(
        model, x, targets, donors=donors, draws=3, generator=torch.Generator().manual_seed(2)
    )
    # Re-draw the same donors: a linear score's drop is w_k . (x_k - mean of the drawn donors).
    picks = torch.randint(0, 40, (3, K, N), generator=torch.Generator().manual_seed(2))
    drawn = torch.stack([donors[picks[:, k], k].mean(dim=0) for k in range(K)], dim=1)  # (N, K, H)
    torch.testing.assert_close(imp.scores, (w * (x - drawn)).sum(dim=-1), atol=1e-5, rtol=1e-5)
    assert torch.all(imp.scores[:, 0] == 0)  # a layer the model never reads scores 0
    assert imp.method == "resample ablation"
    with pytest.raises(ValueError, match="donors must be"):
        resample_ablation_importance(model, x, targets, donors=donors[:, :2])
    with pytest.raises(ValueError, match="draws"):
        resample_ablation_importance(model, x, targets, donors=donors, draws=0)


def test_resample_ablation_never_leaves_the_data_manifold():
    # A model that is 0 on every vector a sentence produced and 1 elsewhere: a mean baseline (off
    # the data) makes every layer look important, donors from the data make none important.
    donors = torch.tensor([[[1.0], [1.0]], [[-1.0], [-1.0]]])  # (2, K=2, H=1): values +-1 only

    class OffManifold(nn.Module):
        def forward(self, x):
            off = (x.abs() - 1).abs().amax(dim=(1, 2))  # (N,): 0 when every value is +-1
            return torch.stack([torch.zeros_like(off), -off], dim=1)

    model, x = OffManifold().eval(), donors.clone()
    targets = torch.ones(2, dtype=torch.long)
    assert ablation_importance(model, x, targets, reference=donors).scores.abs().sum() > 0
    assert resample_ablation_importance(model, x, targets, donors=donors).scores.abs().sum() == 0


def test_example_shares_are_per_item_and_sum_to_one():
    scores = torch.tensor([[0.0, 1.0, -3.0], [0.0, 0.0, 0.0]])
    shares = LayerImportance("x", scores, layer_names(3)).example_shares()
    torch.testing.assert_close(shares, torch.tensor([[0.0, 0.25, 0.75], [0.0, 0.0, 0.0]]))
