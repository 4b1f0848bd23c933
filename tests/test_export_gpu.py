"""`hwnas export` on a GPU: fp16 ONNX parity on CUDA, TensorRT engines with their
inspector JSON, timing cache and real precision. conftest skips these with the
reason where CUDA or TensorRT is absent; `python benchmarks/gpu_suite.py` runs them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import search_spaces
from hwnas.cli import main
from hwnas.export import BatchSpec, ExportOptions, export_network, latency_results, verify_files
from profilers import MeasureConfig

SMALL = {"resolution": 64, "widths": [16, 16, 16, 24, 32, 48, 64, 96, 256], "depths": [2, 2, 2, 2, 2, 1], "num_classes": 10}
FAST = MeasureConfig(warmup_runs=3, warmup_s=0.05, min_runs=10, max_runs=200, budget_s=0.5)


def small_arch() -> search_spaces.Architecture:
    return search_spaces.get_space("proxyless", **SMALL).sample(np.random.default_rng(1))


def options(**changes: object) -> ExportOptions:
    base = {"device": "cuda:0", "batch": BatchSpec.static(8), "measure_config": FAST}
    return ExportOptions(**{**base, **changes})  # type: ignore[arg-type]


def _ort_cuda_loads() -> bool:
    from profilers.backends._ort_probe import provider_unusable_reason  # noqa: PLC0415

    return provider_unusable_reason("CUDAExecutionProvider") is None


@pytest.mark.cuda
@pytest.mark.ort_provider("cuda")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_cuda_onnx_parity_and_latency(precision: str, tmp_path: Path) -> None:
    manifest = export_network(small_arch(), tmp_path / "out", options(precision=precision)).manifest
    places = {(p["provider"], p["precision"]) for p in manifest["parity"]}
    assert ("CUDAExecutionProvider", precision) in places
    assert all(p["passed"] for p in manifest["parity"])
    if precision == "fp16":
        assert manifest["inputs"][0]["dtype"] == "float16"
    latency = latency_results(manifest)
    assert set(latency) == {"eager", "ort"}
    assert latency["ort"].context.provider == "CUDAExecutionProvider" and latency["ort"].context.batch_size == 8


@pytest.mark.cuda
def test_gpu_export_measures_with_what_loads_here(tmp_path: Path) -> None:
    """fp32 on a GPU machine with or without ORT's CUDA provider (#14.5): CPU ORT parity, eager latency."""
    manifest = export_network(small_arch(), tmp_path / "out", options()).manifest
    assert any(p["provider"] == "CPUExecutionProvider" and p["passed"] for p in manifest["parity"])
    expected = {"eager", "ort"} if _ort_cuda_loads() else {"eager"}
    assert set(latency_results(manifest)) == expected


@pytest.mark.tensorrt
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_engine_with_inspector_cache_and_precision(precision: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    manifest = export_network(small_arch(), out, options(precision=precision, formats=("onnx", "tensorrt"))).manifest
    assert {"model.onnx", "model.engine", "model.layers.json", "timing.cache"} <= set(manifest["files"])
    assert verify_files(out, manifest) == []
    engine = manifest["tensorrt"]
    assert engine["inspector"] == "model.layers.json"
    assert json.loads((out / "model.layers.json").read_text())["Layers"]
    assert engine["engine_precision"].startswith(precision), engine["engine_precision"]
    assert any(p["runtime"] == "tensorrt" and p["passed"] for p in manifest["parity"])
    assert set(latency_results(manifest)) == {"eager", "tensorrt"} | ({"ort"} if _ort_cuda_loads() else set())


@pytest.mark.tensorrt
def test_tensorrt_engine_for_a_dynamic_batch(tmp_path: Path) -> None:
    manifest = export_network(small_arch(), tmp_path / "out",
                              options(batch=BatchSpec.parse_dynamic("2,4,8"), formats=("onnx", "tensorrt"))).manifest
    assert "min [2, " in manifest["tensorrt"]["optimization_profile"]
    assert latency_results(manifest)["tensorrt"].context.batch_size == 4


@pytest.mark.tensorrt
def test_hwnas_profile_times_the_exported_engine(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["export", "unas_gpu", "--format", "onnx,tensorrt", "--device", "cuda:0", "--batch-size", "8",
                 "--input-size", "128", "--budget", "1", "--out", str(out)]) == 0
    report = tmp_path / "profile.json"
    assert main(["profile", "--model", f"{out / 'model.engine'},{out / 'model.onnx'}", "--backend", "tensorrt",
                 "--device", "cuda:0", "--batch-size", "8", "--budget", "1", "--json", str(report)]) == 0
    results = json.loads(report.read_text())["results"]
    assert [r["context"]["input_shape"] for r in results] == [[8, 3, 128, 128]] * 2
