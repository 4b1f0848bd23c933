"""One ONNX model of a chain of modules, assembled from parts exported once (#15).

A search times a new sampled network at every architecture step. Tracing the
whole network through `torch.onnx.export` each time cost ~0.12 s of the
~0.2 s spent per sample on two CPU cores, although a sampled network of a
chain space (ProxylessNAS: stem, one candidate per layer, head) only
re-arranges a few dozen distinct parts. `OnnxParts` exports each part once,
keyed by what decides its graph (the caller's name for it, which carries its
position and choice, its exact input shape, precision, exporter and opset),
and `chain_models` joins the parts' graphs output to input. It knows ONNX, not
search spaces: the space says which parts a network is, in order
(`search_spaces.base.SearchSpace.chain`), and the search hands them over.

Why the joined model times the same network as a whole export:

- Each part is traced exactly as the whole network traces it (same module
  code, same input shape, eval mode, same exporter and opset), so the graph
  is the whole export's graph cut at the part boundaries; the tests compare
  outputs (same weights) and the multiset of op types with a whole export.
- ONNX Runtime / TensorRT optimise the joined graph as a whole (level ALL:
  fusions across the old boundaries are as available as in one export).
- Weight values differ from a freshly built network's (a part keeps the
  weights it was exported with); dense kernels do not run faster or slower
  for other values, and inputs stay random (never zeros).

Direct graph assembly, not `onnx.compose.merge_models`: merging N models is
N-1 pairwise merges, each re-checking and copying everything merged so far.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from profilers._onnx import INPUT_NAME, OPSET, OUTPUT_NAME, export_onnx
from profilers.backends.base import PRECISIONS, import_optional, module_copy, random_input
from profilers.errors import ProfilerError

Shape = tuple[int, ...]


@dataclass(frozen=True)
class PartKey:
    """Everything that changes a part's exported graph: the caller's name (position and choice),
    the exact input shape, precision, exporter and opset."""

    name: str
    input_shape: Shape
    precision: str
    exporter: str
    opset: int


class OnnxParts:
    """Exported parts by key, for one device; `model` joins the parts of one network.

    `build` callables are only called for a part not exported yet, so a
    network whose parts are all known costs no module construction.
    """

    def __init__(self, device: str | torch.device = "cpu", precision: str = "fp32", exporter: str = "torchscript",
                 opset: int = OPSET, seed: int = 0) -> None:
        self.device = torch.device(device)
        self.precision = precision
        self.exporter = exporter
        self.opset = opset
        self.seed = seed
        self._parts: dict[PartKey, Any] = {}
        self.exported = 0
        """How many parts were traced (the rest of the requests were served from the cache)."""

    def __len__(self) -> int:
        return len(self._parts)

    def key(self, name: str, input_shape: Shape) -> PartKey:
        return PartKey(name, tuple(int(d) for d in input_shape), self.precision, self.exporter, self.opset)

    def part(self, name: str, input_shape: Shape, build: Callable[[], nn.Module]) -> Any:
        """The ONNX model (`onnx.ModelProto`) of one part, exported on first request."""
        key = self.key(name, input_shape)
        if key not in self._parts:
            self._parts[key] = self._export(build(), key)
            self.exported += 1
        return self._parts[key]

    def model(self, chain: Sequence[tuple[str, Shape, Callable[[], nn.Module]]]) -> Any:
        """The joined model of a chain given as (name, input shape, build) per part, in order."""
        return chain_models([self.part(name, shape, build) for name, shape, build in chain])

    def _export(self, module: nn.Module, key: PartKey) -> Any:
        onnx = import_optional("onnx", "pip install onnx")
        model = module_copy(module, self.device, self.precision)
        example = random_input(key.input_shape, PRECISIONS[self.precision], self.device, self.seed)
        with tempfile.TemporaryDirectory(prefix="hwnas-part-") as scratch:
            path = Path(scratch) / "part.onnx"
            used = export_onnx(model, example, path, self.exporter, opset=self.opset)
            proto = onnx.load(str(path))
        if used != self.exporter:
            raise ProfilerError(f"part {key.name} was exported by {used}, not {self.exporter}: its graph would not "
                                "match the other parts'; time whole networks instead")
        return proto


def copy_chain_weights(modules: Sequence[nn.Module], network: nn.Module) -> nn.Module:
    """Give `network` the weights and buffers of its chain's `modules` (both list them in the same
    order: stem first, layer by layer, head last), so a joined graph and a whole export of `network`
    can be compared output for output. Returns `network`."""
    theirs = [tensor for module in modules for tensor in module.state_dict().values()]
    mine = list(network.state_dict().values())
    if [t.shape for t in mine] != [t.shape for t in theirs]:
        raise ProfilerError("the chain's modules do not hold the network's tensors in order: not its chain")
    with torch.no_grad():
        for target, source in zip(mine, theirs, strict=True):
            target.copy_(source)
    return network


def _data_input(graph: Any, what: str) -> Any:
    initializers = {init.name for init in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ProfilerError(f"{what} has {len(inputs)} inputs and {len(graph.output)} outputs; "
                            "a chain joins single-input, single-output parts only")
    return inputs[0]


def _dims(value: Any) -> tuple[Any, ...]:
    return tuple(d.dim_value if d.HasField("dim_value") else d.dim_param for d in value.type.tensor_type.shape.dim)


def _refuse_unjoinable(model: Any, what: str) -> None:
    """Subgraphs and local functions would need their own renaming: none of the timed spaces exports them."""
    if len(model.functions):
        raise ProfilerError(f"{what} carries ONNX local functions; join only function-free parts")
    for node in model.graph.node:
        if any(attribute.HasField("g") or len(attribute.graphs) for attribute in node.attribute):
            raise ProfilerError(f"{what} has a control-flow node ({node.op_type}); join only flat graphs")


def chain_models(parts: Sequence[Any]) -> Any:
    """One `onnx.ModelProto`: each part's output feeds the next part's input.

    Every name inside part i is prefixed with `p{i}.` (two parts may share
    names such as `onnx::Conv_5`); part i's input becomes part i-1's output.
    The joined graph's input and output are named like a whole export's
    (`input`, `output`). Shapes and element types must meet at every joint.
    """
    onnx = import_optional("onnx", "pip install onnx")
    if not parts:
        raise ProfilerError("a chain needs at least one part")
    first, last = parts[0], parts[-1]
    opsets = {(entry.domain, entry.version) for entry in first.opset_import}
    nodes, initializers = [], []
    previous_name, previous_value = INPUT_NAME, None
    for index, part in enumerate(parts):
        what = f"part {index} of the chain"
        _refuse_unjoinable(part, what)
        if {(entry.domain, entry.version) for entry in part.opset_import} != opsets:
            raise ProfilerError(f"{what} imports other opsets than part 0; export every part with one exporter and opset")
        graph = part.graph
        data_input, output = _data_input(graph, what), graph.output[0]
        if output.name == data_input.name:
            raise ProfilerError(f"{what} returns its input unchanged; leave such a part out of the chain")
        if previous_value is not None and (
                _dims(previous_value) != _dims(data_input)
                or previous_value.type.tensor_type.elem_type != data_input.type.tensor_type.elem_type):
            raise ProfilerError(f"{what} takes {_dims(data_input)} but part {index - 1} gives {_dims(previous_value)}")
        prefix = f"p{index}."
        output_name = OUTPUT_NAME if index == len(parts) - 1 else prefix + output.name
        renamed = {data_input.name: previous_name, output.name: output_name}

        def rename(name: str, renamed: dict[str, str] = renamed, prefix: str = prefix) -> str:
            return name if name == "" else renamed.get(name, prefix + name)

        for tensor in graph.initializer:
            copy = onnx.TensorProto()
            copy.CopyFrom(tensor)
            copy.name = rename(tensor.name)
            initializers.append(copy)
        for node in graph.node:
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            copy.name = prefix + node.name
            copy.input[:] = [rename(name) for name in node.input]
            copy.output[:] = [rename(name) for name in node.output]
            nodes.append(copy)
        previous_name, previous_value = output_name, output
    graph_input = onnx.ValueInfoProto()
    graph_input.CopyFrom(_data_input(first.graph, "part 0 of the chain"))
    graph_input.name = INPUT_NAME
    graph_output = onnx.ValueInfoProto()
    graph_output.CopyFrom(last.graph.output[0])
    graph_output.name = OUTPUT_NAME
    graph = onnx.helper.make_graph(nodes, "chain", [graph_input], [graph_output], initializer=initializers)
    model = onnx.helper.make_model(graph, opset_imports=list(first.opset_import), ir_version=first.ir_version,
                                   producer_name="hwnas.profilers.onnx_parts")
    return model
