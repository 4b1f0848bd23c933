"""Turn a model spec from the command line into something the profilers can time.

A spec is, in this order: an existing `.onnx` or `.engine` file; an
architecture JSON file or a named architecture of `search_spaces`; a
torchvision classification model name (random weights: latency needs no
pretrained weights). Anything else is a ProfilerError that says how to list
the valid names.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from profilers.errors import ProfilerError

FILE_SUFFIXES = (".onnx", ".engine")
DEFAULT_INPUT_SIZE = 224


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready to time: a module or a file, with the input shape (N, C, H, W) to time it at."""

    name: str
    model: nn.Module | Path
    input_shape: tuple[int, ...]
    source: str  # "onnx file", "tensorrt engine", "architecture", "torchvision"


def resolve_model(spec: str, *, batch_size: int = 1, input_size: int | None = None) -> ResolvedModel:
    """Resolve one spec; `input_size` (pixels) overrides the default resolution."""
    if batch_size < 1:
        raise ProfilerError(f"batch size {batch_size} is not positive: use --batch-size 1 or more")
    if input_size is not None and input_size < 1:
        raise ProfilerError(f"input size {input_size} is not positive: use --input-size 32 or more")
    path = Path(spec)
    if path.suffix in FILE_SUFFIXES:
        _check_readable(path)
        size = input_size or DEFAULT_INPUT_SIZE
        source = "onnx file" if path.suffix == ".onnx" else "tensorrt engine"
        return ResolvedModel(path.name, path, (batch_size, 3, size, size), source)
    architecture = _from_architecture(spec, batch_size, input_size)
    if architecture is not None:
        return architecture
    import torchvision  # noqa: PLC0415 - only this route needs it

    if spec in torchvision_model_names():
        model = torchvision.models.get_model(spec, weights=None)
        size = input_size or DEFAULT_INPUT_SIZE
        return ResolvedModel(spec, model, (batch_size, 3, size, size), "torchvision")
    if path.suffix == ".json":
        _check_readable(path)
    raise ProfilerError(
        f"unknown model {spec!r}: not an .onnx/.engine file, an architecture or a torchvision classification model; "
        "list the names with `hwnas profile --list-models`"
    )


def torchvision_model_names() -> list[str]:
    import torchvision  # noqa: PLC0415

    return list(torchvision.models.list_models(module=torchvision.models))


def architecture_names() -> list[str]:
    """Named architectures of the search-spaces package, or [] before it exists."""
    search_spaces = _search_spaces()
    return list(search_spaces.list_named_architectures()) if search_spaces is not None else []


def _search_spaces():  # noqa: ANN202 - a module or None
    try:
        return importlib.import_module("search_spaces")
    except ImportError:
        return None


def _from_architecture(spec: str, batch_size: int, input_size: int | None) -> ResolvedModel | None:
    search_spaces = _search_spaces()
    if search_spaces is None or not hasattr(search_spaces, "load_architecture"):
        return None
    from search_spaces.errors import ArchitectureError  # noqa: PLC0415

    is_file = spec.endswith(".json") and Path(spec).is_file()
    try:
        arch = search_spaces.load_architecture(spec)
    except ArchitectureError:
        if is_file:
            raise  # a broken architecture file: its own message says what is wrong
        return None
    space = search_spaces.space_for(arch)
    shape = tuple(space.input_shape(batch_size))
    if input_size is not None:
        shape = (*shape[:-2], input_size, input_size)
    name = Path(spec).stem if is_file else spec
    return ResolvedModel(name, space.build(arch), shape, "architecture")


def _check_readable(path: Path) -> None:
    """A regular, readable file (a FIFO named model.onnx would hang ONNX's reader)."""
    from search_spaces.files import open_regular  # noqa: PLC0415

    with open_regular(path, ProfilerError, what="model file", fix="check the path and permissions") as handle:
        try:
            handle.read(1)
        except OSError as error:
            raise ProfilerError(f"cannot read {path}: {error.strerror or error}; check the path and permissions") from None


__all__ = ["ResolvedModel", "architecture_names", "resolve_model", "torchvision_model_names"]
