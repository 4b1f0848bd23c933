"""Acceptance 4: for 50 random architectures of each space and
parameterization: JSON round trip, encode consistency, standalone build and
forward, supernet driven by the one-hot weights equal to the standalone network
carrying the same weights, and ONNX export with ONNX Runtime parity.

Tiny configurations keep it fast; HWNAS_ONNX_ARCHS sets how many of the 50
are also exported to ONNX (default 5: each export costs one to three seconds
on 2 shared cores; HWNAS_ONNX_ARCHS=50 runs the full acceptance check)."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from search_spaces import Architecture, SearchSpace, get_space, space_for

N_ARCHS = 50
N_ONNX = int(os.environ.get("HWNAS_ONNX_ARCHS", 5))

TINY = {
    "proxyless-mnist": ("proxyless", {"widths": [8, 8, 8, 8, 16, 16, 16, 16, 32], "resolution": 28,
                                      "in_channels": 1, "small_input": True, "num_classes": 10}),
    "darts-edges": ("darts", {"parameterization": "edges", "C": 4, "layers": 3, "resolution": 16}),
    "darts-factorized": ("darts", {"parameterization": "factorized", "C": 4, "layers": 3, "resolution": 16}),
    "darts-s1": ("darts", {"parameterization": "s1", "C": 4, "layers": 3, "resolution": 16}),
    "darts-s2": ("darts", {"parameterization": "s2", "C": 4, "layers": 4, "resolution": 16}),
    # a configuration variant (ImageNet stem, GDAS FRC), not a parameterization: fewer draws
    "darts-edges-imagenet-frc": ("darts", {"parameterization": "edges", "network": "imagenet", "C": 8, "layers": 3,
                                           "resolution": 32, "fixed_reduction": True, "num_classes": 7}),
}


def randomize(module: nn.Module, seed: int) -> nn.Module:
    """Non-trivial BN statistics and affine parameters, so equal outputs mean equal weights."""
    generator = torch.Generator().manual_seed(seed)
    for layer in module.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.running_mean.copy_(torch.randn(layer.num_features, generator=generator) * 0.1)
            layer.running_var.copy_(torch.rand(layer.num_features, generator=generator) + 0.5)
            layer.weight.data.copy_(torch.rand(layer.num_features, generator=generator) + 0.5)
            layer.bias.data.copy_(torch.randn(layer.num_features, generator=generator) * 0.1)
    return module.eval()


def onnx_outputs(network: nn.Module, x: torch.Tensor) -> np.ndarray:
    import onnxruntime as ort

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(network, (x,), buffer, opset_version=17, dynamo=False,
                          input_names=["x"], output_names=["logits"])
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x.numpy()})[0]


def check_json_round_trip(space: SearchSpace, arch: Architecture, tmp_path: Path) -> None:
    path = arch.save(tmp_path / "arch.json")
    loaded = Architecture.load(path)
    assert loaded == arch
    assert Architecture.from_dict(arch.to_dict()) == arch
    assert space_for(loaded).signature() == space.signature()


def check_encoding(space: SearchSpace, arch: Architecture) -> None:
    vector = space.encode(arch)
    names = space.feature_names()
    assert vector.dtype == np.float64 and vector.shape == (len(names),)
    assert vector.sum() == len(space.decisions)
    on = {names[i] for i in np.flatnonzero(vector)}
    assert on == {f"{name}={choice}" for name, choice in arch.choices.items()}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(TINY))
def test_random_architectures(case: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    name, config = TINY[case]
    space = get_space(name, **config)
    supernet = randomize(space.supernet(), seed=1)
    rng = np.random.default_rng(1234)
    x = torch.randn(*space.input_shape(2))
    seen = set()
    draws = N_ARCHS if "frc" not in case else N_ARCHS // 5
    for index in range(draws):
        arch = space.sample(rng)
        seen.add(tuple(arch.choices.values()))
        check_json_round_trip(space, arch, tmp_path)
        check_encoding(space, arch)

        standalone = space.extract_subnet(supernet, arch).eval()
        with torch.no_grad():
            expected = standalone(x)
            through_supernet = supernet(x, space.one_hot(arch))
        assert expected.shape == (2, space.config["num_classes"])
        torch.testing.assert_close(through_supernet, expected, rtol=1e-5, atol=1e-5)

        if index < N_ONNX:
            np.testing.assert_allclose(onnx_outputs(standalone, x), expected.numpy(), rtol=1e-4, atol=1e-4)
    assert len(seen) == draws, "uniform sampling repeated an architecture in a large space"
