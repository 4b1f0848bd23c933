"""The ONNX Runtime provider probe (#14.6) and the TensorRT file helpers (#14.10) on this machine.

onnxruntime-gpu lists CUDAExecutionProvider here although there is no driver:
exactly the case the probe exists for. No mocks: real sessions, real files.
"""

from __future__ import annotations

import os

import onnxruntime as ort
import pytest
import torch

import profilers
from profilers import MeasureConfig, ProfilerError
from profilers.backends._ort_probe import failure_cause, native_stderr, provider_unusable_reason
from profilers.backends.tensorrt import ShapeRange


def test_the_cpu_provider_loads() -> None:
    assert provider_unusable_reason("CPUExecutionProvider") is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a usable GPU")
@pytest.mark.parametrize("provider", ["CUDAExecutionProvider", "TensorrtExecutionProvider"])
def test_a_listed_provider_that_does_not_load_is_refused_with_its_cause(provider: str) -> None:
    reason = provider_unusable_reason(provider)
    assert reason is not None
    if provider in ort.get_available_providers():  # onnxruntime-gpu: listed, falls back
        assert "listed" in reason and "does not load" in reason
        assert ".so" in reason or "Failed" in reason or "falls back" in reason  # the library ORT could not load
    else:  # the CPU wheel does not list it at all
        assert "has no" in reason


def test_an_unknown_provider_is_named() -> None:
    assert "has no NoSuchExecutionProvider" in provider_unusable_reason("NoSuchExecutionProvider")


def test_native_stderr_is_captured_and_the_cause_extracted() -> None:
    with native_stderr() as lines:
        os.write(2, b"\x1b[1;31m2026 [E:onnxruntime] Failed to load library libx.so with error: libcuda.so.1: cannot open\x1b[m\n")
    assert failure_cause(lines) == "libcuda.so.1: cannot open"
    assert failure_cause(["nothing to see"]) is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a usable GPU")
def test_ort_on_cuda_is_refused_in_one_line_before_any_work() -> None:
    with pytest.raises(ProfilerError) as error:
        profilers.measure(torch.nn.Identity(), backend="ort", device="cuda", config=MeasureConfig())
    assert "\n" not in str(error.value)


def test_fixed_shape_range() -> None:
    shapes = ShapeRange.fixed((8, 3, 32, 32))
    assert shapes.min == shapes.opt == shapes.max == (8, 3, 32, 32)
