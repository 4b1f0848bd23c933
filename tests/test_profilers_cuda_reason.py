"""Why CUDA cannot be used, named for what it is (#14.1): torch's CUDA against the driver's."""

from __future__ import annotations

import pytest
import torch

from profilers._context import nvidia_driver
from profilers._device import cuda_unavailable_reason, driver_too_old


@pytest.mark.parametrize(
    ("torch_cuda", "driver_cuda", "too_old"),
    [
        ("13.0", "12.4", True),   # torch cu130 on a 550 driver: is_available() is False
        ("13.0", "13.0", False),  # driver 580
        ("12.8", "12.4", False),  # CUDA minor version compatibility within 12.x
        ("12.6", "13.1", False),  # newer drivers run older runtimes
        ("11.8", "12.0", False),
    ],
)
def test_driver_too_old_compares_major_versions(torch_cuda: str, driver_cuda: str, too_old: bool) -> None:
    assert driver_too_old(torch_cuda, driver_cuda) is too_old


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a usable GPU")
def test_the_reason_names_torchs_cuda_and_the_driver_state() -> None:
    reason = cuda_unavailable_reason()
    assert reason is not None and "\n" not in reason
    if torch.version.cuda is not None:
        assert f"CUDA {torch.version.cuda}" in reason
        driver = nvidia_driver()
        assert ("no NVIDIA driver" in reason) == (driver.version is None)
