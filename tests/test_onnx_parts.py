"""A sampled network's ONNX graph joined from per-layer parts is the network a whole export gives (#15).

The reference is independent of the joining code: `torch.onnx.export` of the
whole `space.build(arch)` network, run by ONNX Runtime, with the same weights.
"""

from __future__ import annotations

import collections
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from hwnas.search.latency import LatencyConditions, LatencyOracle, SEARCH_MEASURE
from profilers._onnx import export_onnx
from profilers.backends.base import PRECISIONS, module_copy
from profilers.errors import ProfilerError
from profilers.onnx_parts import OnnxParts, chain_models, copy_chain_weights
from search_spaces import get_space

SMALL = {"widths": [16, 8, 16, 24, 32, 48, 64, 96, 256], "depths": [2, 2, 2, 2, 2, 1], "small_input": False,
         "resolution": 36, "num_classes": 10, "in_channels": 1}
"""The default run's space (cluttered MNIST canvas, stride-2 stem)."""
TINY = {"widths": [4, 4, 4, 4, 8, 8, 8, 8, 16], "depths": [1, 1, 1, 1, 1, 1], "small_input": True, "resolution": 12,
        "num_classes": 3}


def _ort_output(model: onnx.ModelProto | Path, x: torch.Tensor, provider: str = "CPUExecutionProvider") -> np.ndarray:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    session = onnxruntime.InferenceSession(source, options, providers=[provider])
    assert session.get_providers()[0] == provider
    return session.run(None, {session.get_inputs()[0].name: x.cpu().numpy()})[0].astype(np.float32)


def _op_types(model: onnx.ModelProto) -> collections.Counter[str]:
    return collections.Counter(node.op_type for node in model.graph.node)


def _chain_with_the_networks_weights(space, arch, batch_size):  # noqa: ANN001, ANN202
    """The chain's modules, with non-trivial BatchNorm statistics, and `build(arch)` given the same weights."""
    chain = space.chain(arch, batch_size)
    modules = [part.build().eval() for part in chain]
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for module in modules:
            for name, buffer in module.named_buffers():
                if name.endswith(("running_mean", "running_var")):
                    buffer.copy_(torch.rand(buffer.shape, generator=generator) + 0.5)
    return chain, modules, copy_chain_weights(modules, space.build(arch).eval())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_joined_graph_gives_the_whole_exports_outputs_and_ops(tmp_path: Path, seed: int) -> None:
    space = get_space("proxyless", **SMALL)
    arch = space.sample(np.random.default_rng(seed))
    chain, modules, network = _chain_with_the_networks_weights(space, arch, 1)
    x = torch.randn(space.input_shape(1), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        torch.testing.assert_close(torch.nn.Sequential(*modules)(x), network(x), rtol=0, atol=0)  # the chain is the network
    export_onnx(network, x, tmp_path / "whole.onnx", "torchscript")
    whole = onnx.load(str(tmp_path / "whole.onnx"))
    joined = OnnxParts().model([(p.name, p.input_shape, lambda m=m: m) for p, m in zip(chain, modules, strict=True)])
    onnx.checker.check_model(joined, full_check=True)
    assert _op_types(joined) == _op_types(whole)
    assert [i.name for i in joined.graph.input] == ["input"] and [o.name for o in joined.graph.output] == ["output"]
    np.testing.assert_allclose(_ort_output(joined, x), _ort_output(tmp_path / "whole.onnx", x), rtol=1e-5, atol=1e-6)


def test_zero_layers_are_left_out_of_the_chain() -> None:
    space = get_space("proxyless", **TINY)
    zero = {d.name: ("zero" if "zero" in d.choices else "k3_e3") for d in space.decisions}
    names = [part.name for part in space.chain(space.architecture(zero), 2)]
    kept = [d.name for d in space.decisions if "zero" not in d.choices]
    assert names == ["stem", *[f"{name}.k3_e3" for name in kept], "head"]
    assert space.chain(space.architecture(zero), 2)[0].input_shape == (2, 3, 12, 12)


def test_darts_cells_are_not_a_chain() -> None:
    space = get_space("darts", C=4, layers=2)
    assert space.chain(space.sample(np.random.default_rng(0)), 1) is None


def test_parts_are_exported_once_per_name_and_shape() -> None:
    space = get_space("proxyless", **TINY)
    parts = OnnxParts()
    built = collections.Counter()

    def counted(part):  # noqa: ANN001, ANN202
        def build():  # noqa: ANN202
            built[part.name] += 1
            return part.build()
        return build

    rng = np.random.default_rng(0)
    for _ in range(6):
        parts.model([(p.name, p.input_shape, counted(p)) for p in space.chain(space.sample(rng), 1)])
    assert parts.exported == len(parts) == len(built) and set(built.values()) == {1}
    stem = space.chain(space.sample(rng), 2)[0]
    parts.part(stem.name, stem.input_shape, stem.build)  # another batch size is another graph
    assert len(parts) == len(built) + 1


def test_joints_must_agree_in_shape() -> None:
    space = get_space("proxyless", **TINY)
    parts = OnnxParts()
    chain = space.chain(space.sample(np.random.default_rng(0)), 1)
    stem, head = (parts.part(p.name, p.input_shape, p.build) for p in (chain[0], chain[-1]))
    with pytest.raises(ProfilerError, match="part 1 of the chain takes"):
        chain_models([stem, head])
    with pytest.raises(ProfilerError, match="at least one part"):
        chain_models([])


@pytest.mark.parametrize("backend", ["ort", "eager"])
def test_the_oracle_times_samples_from_parts_for_onnx_backends(backend: str) -> None:
    space = get_space("proxyless", **TINY)
    oracle = LatencyOracle(space, LatencyConditions(backend=backend, threads=1),
                           config=replace(SEARCH_MEASURE, budget_s=0.01, min_runs=3))
    count = oracle.prepare_parts()
    rng = np.random.default_rng(1)
    results = [oracle.measure_sample(space.sample(rng)) for _ in range(3)]
    assert all(r.value_ms > 0 and r.context.backend == backend for r in results)
    if backend == "eager":
        assert oracle.parts is None and count == 0
        return
    layers = sum(len([c for c in d.choices if c != "zero"]) for d in space.decisions)
    assert count == layers + 2 and oracle.parts.exported == count  # every non-zero choice, stem, head; samples add none
    assert all(r.context.details["onnx_file"].endswith("sample.onnx") for r in results)


@pytest.mark.cuda
@pytest.mark.ort_provider("cuda")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_parts_joined_on_the_gpu_give_the_whole_exports_outputs(tmp_path: Path, precision: str) -> None:
    """As the GPU search does: parts exported on the device in the timed precision, batch 32, ORT's CUDA EP."""
    space = get_space("proxyless", **SMALL)
    arch = space.sample(np.random.default_rng(4))
    chain, modules, network = _chain_with_the_networks_weights(space, arch, 32)
    device = torch.device("cuda:0")
    x = torch.randn(space.input_shape(32), generator=torch.Generator().manual_seed(4)).to(device, PRECISIONS[precision])
    export_onnx(module_copy(network, device, precision), x, tmp_path / "whole.onnx", "torchscript")
    joined = OnnxParts(device, precision).model([(p.name, p.input_shape, lambda m=m: m)
                                                 for p, m in zip(chain, modules, strict=True)])
    assert joined.graph.input[0].type.tensor_type.elem_type == onnx.helper.np_dtype_to_tensor_dtype(
        np.dtype(np.float16 if precision == "fp16" else np.float32))
    whole, mine = (_ort_output(m, x, "CUDAExecutionProvider") for m in (tmp_path / "whole.onnx", joined))
    scale = max(1.0, float(np.abs(whole).max()))
    assert float(np.abs(whole - mine).max()) <= (5e-2 if precision == "fp16" else 1e-2) * scale


@pytest.mark.tensorrt
def test_the_oracle_times_joined_samples_with_tensorrt_in_fp16() -> None:
    space = get_space("proxyless", **TINY)
    oracle = LatencyOracle(space, LatencyConditions(device="cuda:0", backend="tensorrt", batch_size=8, precision="fp16"),
                           config=replace(SEARCH_MEASURE, budget_s=0.02, min_runs=3))
    result = oracle.measure_sample(space.sample(np.random.default_rng(2)))
    assert result.value_ms > 0 and oracle.parts is not None and oracle.parts.exported > 0
    assert "fp16" in result.context.details["engine_precision"] and result.timing_mode == "gpu_events"
