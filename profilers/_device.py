"""Parse a device string and describe the device; every refusal is a ProfilerError."""

from __future__ import annotations

import platform
import re
import warnings

import torch

from profilers._context import nvidia_driver
from profilers.errors import ProfilerError

_DEVICE_PATTERN = re.compile(r"^(cpu|cuda)(?::(\d+))?$")


def parse_device(device: str | torch.device) -> torch.device:
    """'cpu', 'cuda' or 'cuda:N' -> torch.device; refuses CUDA where there is none."""
    match = _DEVICE_PATTERN.match(str(device).strip().lower())
    if match is None or (match.group(1) == "cpu" and match.group(2) is not None):
        raise ProfilerError(f"unknown device {str(device)!r}: use cpu, cuda or cuda:N")
    if match.group(1) == "cpu":
        return torch.device("cpu")
    reason = cuda_unavailable_reason()
    if reason is not None:
        raise ProfilerError(f"device {device} asked for, but {reason}; use --device cpu")
    index = int(match.group(2) or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise ProfilerError(f"device cuda:{index} asked for, but this machine has {count} GPU(s): use cuda:0..{count - 1}")
    return torch.device("cuda", index)


def cuda_unavailable_reason() -> str | None:
    """Why CUDA cannot be used here, or None when it can: the real cause where it can be
    told, above all a PyTorch built for a newer CUDA than the NVIDIA driver supports."""
    if torch.version.cuda is None:
        return "this PyTorch build has no CUDA support (a CPU-only wheel)"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if torch.cuda.is_available():
            return None
    torch_says = next((str(w.message).strip().splitlines()[0] for w in caught if "CUDA" in str(w.message)), None)
    built = f"torch {torch.__version__} is built for CUDA {torch.version.cuda}"
    driver = nvidia_driver()
    if driver.version is None:
        return f"{built} and no NVIDIA driver answers here (NVML: {driver.error}): no usable NVIDIA GPU"
    if driver.cuda is not None and driver_too_old(torch.version.cuda, driver.cuda):
        return (
            f"{built}, but NVIDIA driver {driver.version} supports CUDA up to {driver.cuda}: install a torch build "
            f"for CUDA {driver.cuda.split('.')[0]}.x (make TORCH_INDEX=https://download.pytorch.org/whl/cuXYZ, "
            f"XYZ <= {driver.cuda.replace('.', '')}) or a newer driver ({_DRIVER_FOR.get(_major(torch.version.cuda), 'see the CUDA release notes')})"
        )
    detail = f"; torch says: {torch_says}" if torch_says else ""
    return f"{built} and finds no usable GPU with NVIDIA driver {driver.version} (CUDA {driver.cuda}){detail}"


# Minimum Linux driver per CUDA major (CUDA toolkit release notes, "CUDA Toolkit and Minimum Required Driver").
_DRIVER_FOR = {12: "CUDA 12.x needs driver >= 525", 13: "CUDA 13.x needs driver >= 580"}


def _major(version: str) -> int:
    return int(version.split(".")[0])


def driver_too_old(torch_cuda: str, driver_cuda: str) -> bool:
    """True when the driver's newest CUDA has a lower major version than torch's CUDA.

    Within one major version CUDA's minor version compatibility lets a driver
    run a newer minor runtime (12.8 wheels on a 12.4 driver), so only the major
    version decides.
    """
    return _major(driver_cuda) < _major(torch_cuda)


def device_name(device: torch.device) -> str:
    """GPU product name, or the CPU model name from /proc/cpuinfo."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
