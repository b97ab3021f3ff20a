"""Seeding: `seed_everything` repeats every generator; `seeded` restores every generator it touched."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from course_utils import feedback, seeding


def test_seed_everything_makes_all_generators_repeat():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    seeding.seed_everything(3)
    first = draw()
    seeding.seed_everything(3)
    assert draw() == first
    with pytest.raises(ValueError, match="non-negative int"):
        seeding.seed_everything(-1)


def test_seeded_restores_the_outer_random_state():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    with seeding.seeded(123) as gen:
        inner = torch.rand(2, generator=gen)
        torch.rand(5)  # consumes the global stream inside the block only
    assert torch.equal(torch.rand(3), expected)
    with seeding.seeded(123) as gen:
        assert torch.equal(torch.rand(2, generator=gen), inner)


def _draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), torch.rand(1).item()


@pytest.mark.parametrize("context", ["seeded", "rng_restored", "checker"])
def test_python_numpy_and_torch_cpu_streams_continue_as_if_the_block_never_ran(context):
    seeding.seed_everything(5)
    expected = _draws()
    seeding.seed_everything(5)
    if context == "checker":

        @feedback.checker
        def check():
            seeding.seed_everything(99)
            _draws()

        check()
    else:
        block = seeding.seeded(99) if context == "seeded" else seeding.rng_restored()
        with block:
            seeding.seed_everything(42)
            _draws()
    assert _draws() == expected


def test_streams_are_restored_after_an_error_inside_the_block():
    seeding.seed_everything(1)
    expected = _draws()
    seeding.seed_everything(1)
    with pytest.raises(RuntimeError, match="boom"), seeding.seeded(2):
        _draws()
        raise RuntimeError("boom")
    assert _draws() == expected


def test_seeded_rejects_a_bad_seed_and_leaves_the_streams_alone():
    seeding.seed_everything(1)
    expected = _draws()
    seeding.seed_everything(1)
    with pytest.raises(ValueError, match="non-negative int"), seeding.seeded(-3):
        pass
    assert _draws() == expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("context", ["seeded", "checker"])
def test_every_cuda_device_stream_is_restored(context):
    devices = range(torch.cuda.device_count())

    def cuda_draws():
        return [torch.rand(3, device=f"cuda:{d}").cpu() for d in devices]

    torch.manual_seed(11)  # seeds every CUDA device too
    expected = cuda_draws()
    torch.manual_seed(11)
    before = [torch.cuda.get_rng_state(d) for d in devices]
    if context == "checker":
        feedback.checker(lambda: (seeding.seed_everything(99), cuda_draws()))()
    else:
        with seeding.seeded(99):
            cuda_draws()  # reseeded and consumed inside the block only
    assert all(
        torch.equal(torch.cuda.get_rng_state(d), s) for d, s in zip(devices, before, strict=True)
    )
    assert all(torch.equal(a, b) for a, b in zip(cuda_draws(), expected, strict=True))
