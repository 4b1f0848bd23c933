"""Shared test settings: the device comes from HWNAS_TEST_DEVICE (default cpu);
CUDA, TensorRT and ONNX Runtime GPU-provider tests skip with the reason where
those are absent. ORT providers are skipped by probe, not by
`torch.cuda.is_available()`: a GPU machine may have onnxruntime's CPU wheel
only, and onnxruntime-gpu lists providers that do not load
(`@pytest.mark.ort_provider("cuda")`)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch


def _cuda_skip_reason() -> str | None:
    from profilers._device import cuda_unavailable_reason  # noqa: PLC0415 - names a driver too old for torch's CUDA

    reason = cuda_unavailable_reason()
    return None if reason is None else f"needs an NVIDIA GPU: {reason}"


def _ort_provider_skip_reason(key: str) -> str | None:
    from profilers.backends._ort_probe import provider_unusable_reason  # noqa: PLC0415
    from profilers.backends.ort import ort_tensorrt_reason  # noqa: PLC0415

    reason = _cuda_skip_reason()
    if reason:
        return reason
    if key == "tensorrt" and ort_tensorrt_reason() is not None:
        return ort_tensorrt_reason()
    names = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
    reason = provider_unusable_reason(names[key])
    return None if reason is None else f"needs ONNX Runtime's {names[key]}: {reason}"


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
        provider = item.get_closest_marker("ort_provider")
        if provider is not None:
            reason = _ort_provider_skip_reason(provider.args[0])
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


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


@pytest.fixture(scope="module")
def fitted_profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fitted profile directory of the tiny proxyless space (30 samples), shared by a test module."""
    from lut.profile import fit_directory  # noqa: PLC0415
    from test_cli_lut import _profile_dir  # noqa: PLC0415

    out = _profile_dir(tmp_path_factory.mktemp("fitted") / "prof", samples=30)
    fit_directory(out)
    return out


@pytest.fixture
def profile(fitted_profile: Path, tmp_path: Path) -> Path:
    """A fresh copy of `fitted_profile` a test may damage."""
    return Path(shutil.copytree(fitted_profile, tmp_path / "prof"))
