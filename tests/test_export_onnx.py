"""Acceptance 1 of `hwnas export`: ONNX files that pass the checker and match eager through ONNX Runtime.

20 random architectures of every registered space (small configurations,
so the whole file stays near two minutes on two shared cores) and every
named architecture once, full size, at a low resolution where the space
allows it. Parity bound: fp32 max relative error < 1e-3 on ONNX Runtime's
CPU provider (`hwnas.export.parity`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import search_spaces
from hwnas.export import BatchSpec, ExportOptions, export_network
from profilers import MeasureConfig

RANDOM_PER_SPACE = 20
FP32_BOUND = 1e-3
# Small configurations: every decision of the space, a fraction of the compute.
SMALL_CONFIGS: dict[str, list[dict[str, Any]]] = {
    "proxyless": [{"resolution": 32, "widths": [8, 8, 8, 8, 8, 8, 8, 8, 16], "depths": [2, 2, 2, 2, 2, 1], "num_classes": 10}],
    "darts": [
        {"C": 4, "layers": 3, "resolution": 16, "parameterization": "edges"},
        {"C": 4, "layers": 3, "resolution": 16, "parameterization": "factorized"},
        {"C": 4, "layers": 3, "resolution": 16, "parameterization": "s1"},
    ],
}
# Both spaces end in global pooling, so a full-size network runs at any side its strides divide.
LOW_RESOLUTION = {"proxyless": 64, "darts": 16}
QUICK = ExportOptions(batch=BatchSpec.static(2), measure=(), measure_config=MeasureConfig(threads=1))


def random_cases() -> list[Any]:
    cases = []
    for space_name in search_spaces.list_spaces():
        configs = SMALL_CONFIGS.get(space_name, [{}])
        rng = np.random.default_rng(7)
        for index in range(RANDOM_PER_SPACE):
            config = configs[index % len(configs)]
            arch = search_spaces.get_space(space_name, **config).sample(rng)
            cases.append(pytest.param(arch, id=f"{space_name}-{index:02d}"))
    return cases


def assert_parity(manifest: dict[str, Any]) -> None:
    assert manifest["onnx"]["checker"].startswith("passed")
    assert manifest["parity"], "no parity check ran"
    for parity in manifest["parity"]:
        assert parity["provider"] == "CPUExecutionProvider"
        assert parity["max_rel_error"] < FP32_BOUND, parity
        assert parity["passed"]


@pytest.mark.parametrize("arch", random_cases())
def test_random_architecture_exports_with_parity(arch: search_spaces.Architecture, tmp_path: Path) -> None:
    result = export_network(arch, tmp_path / "out", QUICK)
    assert_parity(result.manifest)
    assert result.manifest["parity"][0]["input_spread"] > 0, "the output does not depend on the input"


@pytest.mark.slow
@pytest.mark.parametrize("name", search_spaces.list_named_architectures())
def test_named_architecture_exports_with_parity(name: str, tmp_path: Path) -> None:
    arch = search_spaces.named_architecture(name)
    size = LOW_RESOLUTION.get(arch.space)
    options = ExportOptions(batch=BatchSpec.static(1), measure=(), input_size=size, measure_config=MeasureConfig(threads=1))
    result = export_network(name, tmp_path / name, options)
    assert_parity(result.manifest)
    assert result.manifest["architecture"]["choices"] == arch.choices
    assert result.manifest["inputs"][0]["shape"][-1] == (size or search_spaces.space_for(arch).input_shape(1)[-1])


def test_dynamic_batch_is_symbolic_and_checked_at_both_ends(tmp_path: Path) -> None:
    arch = search_spaces.get_space("proxyless", **SMALL_CONFIGS["proxyless"][0]).sample(np.random.default_rng(0))
    timing = MeasureConfig(threads=1, budget_s=0.3, min_runs=5, warmup_runs=2, warmup_s=0.0)
    options = ExportOptions(batch=BatchSpec.parse_dynamic("1,2,3"), opset=17, measure=("ort",), measure_config=timing)
    manifest = export_network(arch, tmp_path / "dyn", options).manifest
    assert manifest["onnx"]["opset"] == 17
    assert manifest["inputs"][0]["shape"][0] == "batch" and manifest["outputs"][0]["shape"][0] == "batch"
    assert [p["batch_size"] for p in manifest["parity"]] == [1, 3]
    assert_parity(manifest)
    assert manifest["latency"]["ort"]["context"]["input_shape"] == [2, 3, 32, 32]  # timed at OPT
