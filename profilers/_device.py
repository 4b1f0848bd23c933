"""Parse a device string and describe the device; every refusal is a ProfilerError."""

from __future__ import annotations

import platform
import re

import torch

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
    """Why CUDA cannot be used here, or None when it can."""
    if torch.version.cuda is None:
        return "this PyTorch build has no CUDA support (a CPU-only wheel)"
    if not torch.cuda.is_available():
        return f"CUDA is not available (torch {torch.__version__} built for CUDA {torch.version.cuda} finds no usable GPU/driver)"
    return None


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
