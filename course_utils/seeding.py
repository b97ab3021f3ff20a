"""Seeding: every random number in the course comes from an explicit seed, so every run prints the same."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch

__all__ = ["DEFAULT_SEED", "rng_restored", "seed_everything", "seeded"]

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
def rng_restored() -> Iterator[None]:
    """Run a block, then put every generator back as it was: Python's ``random``, NumPy's global
    generator, PyTorch's CPU generator and the generator of every visible CUDA device.

    The one save/restore of the course: :func:`seeded` and the exercise checkers
    (:func:`~course_utils.feedback.checker`) use it, so code inside may draw or reseed freely and the
    caller's next draw is the one it would have made anyway.

    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> with rng_restored():
    ...     _ = torch.manual_seed(123)
    ...     _ = torch.rand(5)
    >>> first = torch.rand(1)
    >>> _ = torch.manual_seed(0)
    >>> bool(torch.equal(first, torch.rand(1)))
    True
    """
    py_state = random.getstate()
    np_state = np.random.get_state()  # noqa: NPY002
    cuda = range(torch.cuda.device_count()) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=cuda):  # CPU and the listed CUDA devices
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002


@contextlib.contextmanager
def seeded(seed: int = DEFAULT_SEED) -> Iterator[torch.Generator]:
    """Run a block with all generators seeded (as :func:`seed_everything`), then restore them all.

    Yields a ``torch.Generator`` seeded with ``seed`` for code that takes one explicitly. Useful in
    library code (data generators) that must be reproducible without disturbing the caller's stream.
    Python's, NumPy's, PyTorch's CPU and every CUDA device's states are restored on exit.

    >>> import torch
    >>> with seeded(7) as g:
    ...     a = torch.rand(2, generator=g)
    >>> with seeded(7) as g:
    ...     bool(torch.equal(a, torch.rand(2, generator=g)))
    True
    """
    with rng_restored():
        seed_everything(seed)
        yield torch.Generator().manual_seed(seed)
