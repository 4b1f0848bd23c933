"""Shared test settings: the device comes from HWNAS_TEST_DEVICE (default cpu);
CUDA and TensorRT tests skip with the reason where those are absent."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch


def _cuda_skip_reason() -> str | None:
    if not torch.cuda.is_available():
        return "needs an NVIDIA GPU: torch.cuda.is_available() is False on this machine"
    return None


def _tensorrt_skip_reason() -> str | None:
    reason = _cuda_skip_reason()
    if reason:
        return reason
    try:
        import tensorrt  # noqa: F401
    except ImportError as error:
        return f"needs TensorRT (pip install 'hwnas[tensorrt]'): {error}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cuda_reason = _cuda_skip_reason()
    trt_reason = _tensorrt_skip_reason()
    for item in items:
        if "cuda" in item.keywords and cuda_reason:
            item.add_marker(pytest.mark.skip(reason=cuda_reason))
        if "tensorrt" in item.keywords and trt_reason:
            item.add_marker(pytest.mark.skip(reason=trt_reason))


@pytest.fixture(scope="session")
def test_device() -> str:
    return os.environ.get("HWNAS_TEST_DEVICE", "cpu")


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny networks on a shared 2-core machine: one intra-op thread is faster
    and steadier (two threads contending with another process were ~20x slower
    here). Tests that need another count set it themselves."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
