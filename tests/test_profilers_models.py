"""Model specs from the command line: files, named architectures, torchvision names."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

from hwnas.models import resolve_model, torchvision_model_names
from profilers import ProfilerError


def test_torchvision_name_resolves_with_random_weights() -> None:
    resolved = resolve_model("resnet18", batch_size=4, input_size=64)  # mobilenet_v2 is a named architecture now
    assert isinstance(resolved.model, nn.Module) and resolved.source == "torchvision"
    assert resolved.input_shape == (4, 3, 64, 64)
    assert "resnet18" in torchvision_model_names()


def test_named_architecture_resolves_through_search_spaces() -> None:
    search_spaces = pytest.importorskip("search_spaces")
    names = search_spaces.list_named_architectures()
    if not names:
        pytest.skip("search_spaces has no named architectures yet")
    resolved = resolve_model(names[0], batch_size=2)
    assert resolved.source == "architecture" and resolved.input_shape[0] == 2
    assert isinstance(resolved.model, nn.Module)


def test_files_must_be_readable(tmp_path: Path) -> None:
    path = tmp_path / "net.onnx"
    path.write_bytes(b"x")
    resolved = resolve_model(str(path), batch_size=8, input_size=32)
    assert resolved.model == path and resolved.input_shape == (8, 3, 32, 32)
    with pytest.raises(ProfilerError, match="does not exist"):
        resolve_model(str(tmp_path / "missing.engine"))


@pytest.mark.parametrize(("spec", "kwargs", "message"), [
    ("no_such_net", {}, "--list-models"),
    ("resnet18", {"batch_size": 0}, "batch size"),
    ("resnet18", {"input_size": -1}, "input size"),
])
def test_bad_specs(spec: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ProfilerError, match=message):
        resolve_model(spec, **kwargs)
