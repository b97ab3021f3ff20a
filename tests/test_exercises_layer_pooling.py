"""Exercise checkers of notebook 09: fail on the starter, fail on trivial stubs and common mistakes,
pass on the reference solution."""

from __future__ import annotations

import pytest
import torch

from course_utils.exercises.layer_pooling import (
    check_ablate_layer,
    check_final_states,
    check_scalar_mix,
    reference_ablate_layer,
    reference_final_states,
    reference_scalar_mix,
)
from tests.notebook_tools import assert_checker_contract, find_notebook


def _in_place(score_fn, x, k, baseline):
    full = score_fn(x)
    x[:, k] = baseline[k]
    return full - score_fn(x)


EXERCISES = [
    (
        "starter-final-states",
        "final_states",
        check_final_states,
        reference_final_states,
        {
            "seed's out[:, -1, :]": (lambda out, d: out[:, -1, :], "out[:, -1, :]"),
            "halves swapped": (
                lambda out, d: torch.cat([out[:, 0, :d], out[:, -1, d:]], -1),
                "out[:, -1, :D]",
            ),
            "both read at position 0": (lambda out, d: out[:, 0, :], "out[:, -1, :D]"),
        },
    ),
    (
        "starter-scalar-mix",
        "scalar_mix",
        check_scalar_mix,
        reference_scalar_mix,
        {
            "plain mean": (lambda x, w, g: g * x.mean(dim=1), "plain mean"),
            "no softmax": (lambda x, w, g: g * (w.view(1, -1, 1) * x).sum(dim=1), "softmax"),
            "no gamma": (lambda x, w, g: reference_scalar_mix(x, w, 1.0), "gamma"),
        },
    ),
    (
        "starter-ablate-layer",
        "ablate_layer",
        check_ablate_layer,
        reference_ablate_layer,
        {
            "in place": (_in_place, "in place"),
            "sign flipped": (lambda f, x, k, b: -reference_ablate_layer(f, x, k, b), "sign"),
            "zeros, not the baseline": (
                lambda f, x, k, b: reference_ablate_layer(f, x, k, torch.zeros_like(b)),
                "baseline",
            ),
        },
    ),
]
IDS = [e[1] for e in EXERCISES]


@pytest.mark.parametrize(("tag", "name", "checker", "solution", "wrong"), EXERCISES, ids=IDS)
def test_checker_contract(tag, name, checker, solution, wrong):
    stubs = {
        "final_states": [lambda out, d: torch.zeros(out.shape[0], 2 * d)],
        "scalar_mix": [lambda x, w, g: torch.zeros(x.shape[0], x.shape[2])],
        "ablate_layer": [lambda f, x, k, b: torch.zeros(x.shape[0])],
    }[name]
    assert_checker_contract(
        find_notebook("09"), tag, name, checker, solution, stubs, wrong_answers=wrong
    )
    assert "well done" in str(checker(solution))


def test_final_states_stubs_and_the_seed_mistake():
    assert not check_final_states(lambda out, d: torch.zeros(out.shape[0], 2 * d)).passed
    seed = check_final_states(lambda out, d: out[:, -1, :])
    assert not seed.passed and "seed's out[:, -1, :]" in str(seed)
    swapped = check_final_states(lambda out, d: torch.cat([out[:, 0, :d], out[:, -1, d:]], -1))
    assert not swapped.passed and "out[:, -1, :D]" in str(swapped)
    wrong_shape = check_final_states(lambda out, d: out[:, -1, :d])
    assert not wrong_shape.passed and "shape" in str(wrong_shape)
    assert not check_final_states(lambda out, d: out[:, -1, :].tolist()).passed


def test_scalar_mix_stubs_and_common_mistakes():
    assert not check_scalar_mix(lambda x, w, g: torch.zeros(x.shape[0], x.shape[2])).passed
    mean = check_scalar_mix(lambda x, w, g: g * x.mean(dim=1))
    assert not mean.passed and "plain mean" in str(mean)
    raw = check_scalar_mix(lambda x, w, g: g * (w.view(1, -1, 1) * x).sum(dim=1))
    assert not raw.passed and "softmax" in str(raw)
    no_gamma = check_scalar_mix(lambda x, w, g: reference_scalar_mix(x, w, 1.0))
    assert not no_gamma.passed and "gamma" in str(no_gamma)
    keepdim = check_scalar_mix(lambda x, w, g: reference_scalar_mix(x, w, g).unsqueeze(1))
    assert not keepdim.passed and "shape" in str(keepdim)


def test_ablate_layer_stubs_and_common_mistakes():
    assert not check_ablate_layer(lambda f, x, k, b: torch.zeros(x.shape[0])).passed

    def in_place(score_fn, x, k, baseline):
        full = score_fn(x)
        x[:, k] = baseline[k]
        return full - score_fn(x)

    feedback = check_ablate_layer(in_place)
    assert not feedback.passed and "in place" in str(feedback)
    flipped = check_ablate_layer(lambda f, x, k, b: -reference_ablate_layer(f, x, k, b))
    assert not flipped.passed and "sign" in str(flipped)

    def crashes(score_fn, x, k, baseline):
        return score_fn(x[:, k])  # wrong shape into the score: raises

    crashed = check_ablate_layer(crashes)
    assert not crashed.passed and "raised" in str(crashed)
