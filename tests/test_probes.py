"""Linear probes (course_utils.probes); the sum task they are used on is tested in test_tasks.py."""

from __future__ import annotations

import pytest
import torch

from course_utils.probes import layer_probe_errors, layer_probes, probe_r2


def test_probe_r2_reads_a_linear_feature_and_not_noise():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(400, 5, generator=g)
    linear = features @ torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0]) + 4.0
    assert probe_r2(features, linear, n_fit=200) > 0.999
    noise = torch.randn(400, generator=g)  # unrelated to the features
    assert probe_r2(features, noise, n_fit=200) < 0.05
    half = linear + linear.std() * torch.randn(400, generator=g)  # half the variance is noise
    assert 0.35 < probe_r2(features, half, n_fit=200) < 0.65


def test_probe_r2_is_scored_on_held_out_rows():
    g = torch.Generator().manual_seed(1)
    features = torch.randn(40, 30, generator=g)  # as many features as fitted rows: memorises
    target = torch.randn(40, generator=g)
    assert probe_r2(features, target, n_fit=30, ridge=0.0) < 0.0


def test_layer_probes_one_value_per_layer_and_bad_shapes():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(16, 6, generator=g)
    h = torch.stack([torch.stack([x, -x], dim=-1), torch.randn(16, 6, 2, generator=g)])
    r2 = layer_probes(h, x, from_step=1)
    assert len(r2) == 2 and r2[0] > 0.999 and r2[1] < 0.3
    with pytest.raises(ValueError, match="target"):
        layer_probes(h, x[:, :5])
    with pytest.raises(ValueError, match="n_fit"):
        probe_r2(x, x[:, 0], n_fit=15)


def test_layer_probe_errors_are_paired_per_sequence_and_average_to_one_minus_r2():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(20, 7, generator=g)
    h = torch.stack([torch.stack([x, x**2], dim=-1), torch.randn(20, 7, 2, generator=g)])
    errors = layer_probe_errors(h, x.abs(), from_step=2)
    assert errors.shape == (2, 10) and (errors >= 0).all()
    r2 = layer_probes(h, x.abs(), from_step=2)
    assert torch.allclose(1 - errors.mean(dim=1), torch.tensor(r2, dtype=errors.dtype), atol=1e-9)
    with pytest.raises(ValueError, match="target"):
        layer_probe_errors(h, x[:, :5])
    with pytest.raises(ValueError, match="constant"):
        layer_probe_errors(h, torch.ones(20, 7))
