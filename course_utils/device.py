"""Device choice: use a GPU when one is present, the CPU otherwise, and say which."""

from __future__ import annotations

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
