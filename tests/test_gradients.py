"""Gradient connectivity: numbers equal to plain autograd, causality, no side effects, clear errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.gradients import (
    connectivity_map,
    decay_per_step,
    first_last_ratio,
    input_gradient_norms,
)


def _last_step_model(num_layers: int = 2, seed: int = 0):
    torch.manual_seed(seed)
    lstm, head = nn.LSTM(3, 8, num_layers=num_layers, batch_first=True), nn.Linear(8, 1)
    return lstm, head, (lambda x: head(lstm(x)[0][:, -1]).squeeze(-1))


def test_input_gradient_norms_equal_plain_autograd():
    _, _, model = _last_step_model()
    x = torch.randn(5, 7, 3)
    got = input_gradient_norms(model, x)
    xr = x.clone().requires_grad_(True)
    model(xr).sum().backward()
    assert got.shape == (5, 7)
    torch.testing.assert_close(got, xr.grad.norm(dim=-1))


def test_rows_are_per_example_gradients():
    _, _, model = _last_step_model()
    x = torch.randn(4, 6, 3)
    batch = input_gradient_norms(model, x)
    alone = input_gradient_norms(model, x[2:3])
    torch.testing.assert_close(batch[2:3], alone)


def test_loss_objective_scales_each_row_by_its_loss_derivative():
    _, _, model = _last_step_model()
    x, y = torch.randn(4, 6, 3), torch.randn(4)
    out = model(x).detach()
    g_out = input_gradient_norms(model, x)
    g_loss = input_gradient_norms(model, x, objective=lambda o: ((o - y) ** 2).sum())
    torch.testing.assert_close(g_loss, g_out * (2 * (out - y)).abs().unsqueeze(1))


def test_no_side_effects_on_parameters_or_mode():
    lstm, head, _ = _last_step_model()
    net = nn.ModuleDict({"lstm": lstm, "drop": nn.Dropout(0.5), "head": head})
    net.train()

    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net["head"](self.net["drop"](self.net["lstm"](x)[0][:, -1]))

    model = Wrapped().train()
    x = torch.randn(3, 5, 3)
    a = input_gradient_norms(model, x)
    b = input_gradient_norms(model, x)
    torch.testing.assert_close(a, b)  # eval mode inside: dropout off, so deterministic
    assert model.training
    assert all(p.grad is None for p in model.parameters())


def test_connectivity_map_is_causal_and_matches_last_row():
    lstm, _, _ = _last_step_model(num_layers=3)
    x = torch.randn(6, 8, 3)
    m = connectivity_map(lambda z: lstm(z)[0], x)
    assert m.shape == (8, 8)
    assert torch.all(m.triu(diagonal=1) == 0)
    assert torch.all(m.diagonal() > 0)
    last = input_gradient_norms(lambda z: lstm(z)[0][:, -1], x).mean(dim=0)
    torch.testing.assert_close(m[-1], last)


def test_summaries_on_a_known_profile():
    profile = torch.tensor([1e-3, 1e-2, 1e-1, 1.0])
    assert first_last_ratio(profile) == pytest.approx(1e-3)
    assert decay_per_step(profile) == pytest.approx(0.1)
    assert first_last_ratio(profile.repeat(3, 1)) == pytest.approx(1e-3)  # (B, T) averaged first


def test_model_that_ignores_x_gives_zeros():
    w = nn.Parameter(torch.ones(1))
    got = input_gradient_norms(lambda x: w * 2.0, torch.randn(2, 4, 3))
    assert torch.equal(got, torch.zeros(2, 4))


@pytest.mark.parametrize(
    ("x", "error", "text"),
    [
        (torch.randn(4, 10), ValueError, "unsqueeze(-1)"),
        (torch.ones(2, 5, 3, dtype=torch.long), TypeError, "embedded inputs"),
        ([[1.0]], TypeError, "torch.Tensor"),
    ],
)
def test_bad_inputs_say_what_was_expected(x, error, text):
    _, _, model = _last_step_model()
    with pytest.raises(error, match=text.replace("(", r"\(").replace(")", r"\)")):
        input_gradient_norms(model, x)


def test_non_scalar_objective_and_last_step_connectivity_are_rejected():
    lstm, _, model = _last_step_model()
    x = torch.randn(2, 5, 3)
    with pytest.raises(ValueError, match="scalar"):
        input_gradient_norms(model, x, objective=lambda out: out)
    with pytest.raises(ValueError, match="one output per step"):
        connectivity_map(model, x)
    with pytest.raises(ValueError, match="undefined"):
        first_last_ratio(torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="two steps"):
        decay_per_step(torch.tensor([1.0]))


def test_log_slope_of_a_geometric_profile_is_its_rate():
    from course_utils.gradients import log_slope

    t = torch.arange(10, dtype=torch.float64)
    rows = torch.stack([0.5 ** (9 - t), 3.0 * 0.8 ** (9 - t), torch.ones(10)])  # (3, 10)
    got = log_slope(rows)
    assert got.shape == (3,)
    expected = torch.tensor([-torch.log10(torch.tensor(0.5)), -torch.log10(torch.tensor(0.8)), 0.0])
    torch.testing.assert_close(got, expected.double())
    assert log_slope(rows[0]).ndim == 0


def test_log_slope_is_scale_free():
    from course_utils.gradients import log_slope

    norms = torch.rand(4, 12) + 0.1
    torch.testing.assert_close(log_slope(4.0 * norms), log_slope(norms))


@pytest.mark.parametrize("bad", [torch.ones(3, 1), torch.zeros(2, 5), torch.ones(2, 3, 4)])
def test_log_slope_rejects_bad_input(bad):
    from course_utils.gradients import log_slope

    with pytest.raises(ValueError):
        log_slope(bad)
