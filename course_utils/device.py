"""Device choice: use a GPU when one is present, the CPU otherwise, and say which.

The course's device rule: a helper never moves a model or data for you, and what it creates lives on
the device of its inputs (or of the model). :func:`course_utils.training.train` may train on a GPU,
but it hands the model back on the device it came in on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def pick_device(prefer: str | None = None) -> torch.device:
    """Return the device the course should run on.

    Args:
        prefer: ``None`` (default) picks CUDA when available, else Apple's MPS, else the CPU.
            ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"`` forces one; asking for an accelerator that
            is not there raises a ``RuntimeError`` naming what is available.
    """
    if prefer is not None:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"asked for {prefer!r} but no CUDA GPU is visible; use pick_device() or 'cpu'"
            )
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError(f"asked for {prefer!r} but MPS is not available; use 'cpu'")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_device(device: torch.device | None = None) -> str:
    """One line naming the device, e.g. ``'cpu (2 threads)'`` or ``'cuda: NVIDIA H100'``."""
    device = device or pick_device()
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


@contextlib.contextmanager
def without_cudnn() -> Iterator[None]:
    """Run the block (forward **and** backward) with cuDNN switched off; restore the flag after.

    cuDNN's LSTM kernel can only be differentiated in training mode ("cudnn RNN backward can only
    be called in training mode"), so every helper that takes gradients of a model in eval mode
    (``gradients``, ``importance``, ``layer_pooling.direction_gradients``) runs inside this block.
    PyTorch's own kernels run instead. On the CPU (no cuDNN) nothing changes, not even a rounding.
    """
    enabled = torch.backends.cudnn.enabled
    torch.backends.cudnn.enabled = False
    try:
        yield
    finally:
        torch.backends.cudnn.enabled = enabled
