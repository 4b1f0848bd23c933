"""What the context record needs from the machine: library versions and NVML readings.

Clocks and temperature are only *read* (docs/design.md#5-measuring-latency: never touch
clocks, power limits or GPU modes); a GPU that was throttling during a
measurement shows it in the before/after readings.
"""

from __future__ import annotations

import importlib
import os
import platform
from dataclasses import dataclass
from functools import cache

import torch

from profilers.result import GpuState

_LIBRARIES = ("torch", "torchvision", "numpy", "onnx", "onnxscript", "onnxruntime", "tensorrt")


@cache
def library_versions() -> dict[str, str]:
    """Versions of Python, the libraries that time or build models, and CUDA/cuDNN."""
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = str(importlib.import_module(name).__version__)
        except Exception:  # noqa: BLE001 - a missing optional library is simply not listed
            continue
    if torch.version.cuda is not None:
        versions["cuda"] = torch.version.cuda
        cudnn = torch.backends.cudnn.version()
        if cudnn is not None:
            versions["cudnn"] = str(cudnn)
        driver = _driver_version()
        if driver is not None:
            versions["nvidia_driver"] = driver
    return dict(versions)


@dataclass(frozen=True)
class DriverInfo:
    """The NVIDIA driver as NVML reports it: its version, the newest CUDA it supports
    ('12.4'), or why NVML could not tell (no driver, no libnvidia-ml)."""

    version: str | None = None
    cuda: str | None = None
    error: str | None = None


@cache
def nvidia_driver() -> DriverInfo:
    """Read once per process through NVML (nvmlSystemGetDriverVersion, nvmlSystemGetCudaDriverVersion)."""
    try:
        import pynvml  # noqa: PLC0415

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
            cuda = int(pynvml.nvmlSystemGetCudaDriverVersion())  # 12040 means CUDA 12.4
        finally:
            pynvml.nvmlShutdown()
    except Exception as error:  # noqa: BLE001 - no driver, no NVML: say so
        return DriverInfo(error=f"{type(error).__name__}: {error}")
    text = version.decode() if isinstance(version, bytes) else str(version)
    return DriverInfo(text, f"{cuda // 1000}.{cuda % 1000 // 10}")


def _driver_version() -> str | None:
    """The NVIDIA driver version through NVML, or None without a driver."""
    return nvidia_driver().version


def gpu_state(device: torch.device) -> GpuState | None:
    """Clocks (MHz), temperature (C), power (W) and throttle reasons of `device` through NVML."""
    if device.type != "cuda":
        return None
    try:
        import pynvml  # noqa: PLC0415 - optional at runtime, only needed on CUDA

        pynvml.nvmlInit()
        try:
            uuid = str(torch.cuda.get_device_properties(device).uuid)
            handle = pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
            return GpuState(
                sm_clock_mhz=pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM),
                memory_clock_mhz=pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM),
                temperature_c=pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU),
                power_w=pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0,
                throttle_reasons=_clock_event_reasons(pynvml)(handle),
            )
        finally:
            pynvml.nvmlShutdown()
    except Exception as error:  # noqa: BLE001 - a failed reading is recorded, never fatal
        return GpuState(error=f"{type(error).__name__}: {error}")


def _clock_event_reasons(pynvml):  # noqa: ANN001, ANN202 - pynvml has no type stubs
    """NVML renamed 'throttle reasons' to 'clocks event reasons'; accept either binding."""
    return getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or pynvml.nvmlDeviceGetCurrentClocksThrottleReasons


def cpu_load() -> float | None:
    """The 1-minute load average per core: above ~1 other work competes for the CPU,
    so CPU timings include waiting (and GPU timings may include slow launches)."""
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:
        return None
