"""Seeding: every random number in the course comes from an explicit seed, so every run prints the same."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch

DEFAULT_SEED = 0


def seed_everything(seed: int = DEFAULT_SEED) -> int:
    """Seed Python's ``random``, NumPy's global generator and PyTorch (CPU and CUDA).

    Call it at the top of a notebook and before building each model whose initial weights should be
    reproducible. Returns the seed, so ``SEED = seed_everything(SEED)`` reads well in a parameters cell.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeding the legacy global generator is the point
    torch.manual_seed(seed)  # also seeds every CUDA device
    return seed


@contextlib.contextmanager
def seeded(seed: int = DEFAULT_SEED) -> Iterator[torch.Generator]:
    """Run a block with all generators seeded, then restore their previous states.

    Yields a ``torch.Generator`` seeded with ``seed`` for code that takes one explicitly. Useful in
    library code (data generators) that must be reproducible without disturbing the caller's stream.
    """
    py_state = random.getstate()
    np_state = np.random.get_state()  # noqa: NPY002
    torch_state = torch.random.get_rng_state()
    try:
        seed_everything(seed)
        yield torch.Generator().manual_seed(seed)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002
        torch.random.set_rng_state(torch_state)
