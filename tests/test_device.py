"""course_utils.device: which device to train on, and a clear error for a GPU that is not there.

The device rule across the package (tensors follow their inputs) is tested in ``test_devices.py``.
"""

from __future__ import annotations

import pytest
import torch

from course_utils import device


def test_pick_device_defaults_to_an_available_device_and_refuses_missing_gpu():
    assert device.pick_device().type in {"cpu", "cuda", "mps"}
    assert device.pick_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            device.pick_device("cuda")
    assert device.describe_device(torch.device("cpu")).startswith("cpu")
