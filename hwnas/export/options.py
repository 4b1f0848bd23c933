"""What an export is asked to produce: `BatchSpec` and `ExportOptions`.

Plain frozen records so that the CLI, the search pipeline and the tests
describe an export the same way, and so that everything they say can be
checked before any file is written (`ExportOptions.validate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hwnas.errors import UsageError
from profilers import MeasureConfig
from profilers._onnx import OPSET

FORMATS = ("onnx", "tensorrt")
PRECISIONS = ("fp32", "fp16")
EXPORTERS = ("torchscript", "dynamo")
MEASURE_BACKENDS = ("eager", "ort", "tensorrt")
# Opsets each torch.onnx exporter writes (torch 2.4-2.14): the TorchScript exporter stops at 20,
# the dynamo exporter starts at 18; below 13 nothing these networks use gets better.
OPSET_RANGE = {"torchscript": (13, 20), "dynamo": (18, 23)}


@dataclass(frozen=True)
class BatchSpec:
    """Batch sizes the exported graph accepts: one static size, or a dynamic
    range MIN..MAX with OPT the size to time and to build kernels for."""

    min: int
    opt: int
    max: int
    dynamic: bool = False

    @classmethod
    def static(cls, size: int) -> BatchSpec:
        if size < 1:
            raise UsageError(f"--batch-size {size} is not positive: use 1 or more")
        return cls(size, size, size, dynamic=False)

    @classmethod
    def parse_dynamic(cls, text: str) -> BatchSpec:
        """'1,8,32' -> MIN 1, OPT 8, MAX 32 (MIN <= OPT <= MAX, all positive)."""
        try:
            low, opt, high = (int(part) for part in text.split(","))
        except ValueError:
            raise UsageError(f"--dynamic-batch {text!r} is not MIN,OPT,MAX: give three integers, e.g. 1,8,32") from None
        if not 1 <= low <= opt <= high:
            raise UsageError(f"--dynamic-batch {text}: need 1 <= MIN <= OPT <= MAX")
        return cls(low, opt, high, dynamic=True)

    @property
    def checked_sizes(self) -> tuple[int, ...]:
        """Batch sizes the parity check runs: both ends of a dynamic range, else the one size."""
        return tuple(sorted({self.min, self.max})) if self.dynamic else (self.opt,)

    def to_dict(self) -> dict[str, int | bool]:
        return {"dynamic": self.dynamic, "min": self.min, "opt": self.opt, "max": self.max}


@dataclass(frozen=True)
class ExportOptions:
    """Everything `export_network` needs besides the architecture and the output folder.

    - formats: "onnx" and/or "tensorrt" (a TensorRT engine is built from the ONNX file, which is kept).
    - precision: "fp32" or "fp16"; fp16 exports an fp16 graph (TensorRT networks are strongly typed).
    - batch: static or dynamic batch; latency is measured at `batch.opt`.
    - opset / exporter: the ONNX opset and torch.onnx exporter ("torchscript" or "dynamo").
    - device: where parity and latency run ("cpu" or "cuda:N"); fp16 and TensorRT need CUDA.
    - input_size: input side in pixels, overriding the architecture's resolution.
    - weights / inherit_from: a training checkpoint, or a supernet checkpoint whose
      selected paths the network inherits; neither = random initialisation.
    - simplify: run onnxslim on the graph if it is installed (skipped with a note if not).
    - measure: backends to time (None = eager plus the runtime of each exported format; () = none).
    - measure_config: how the profilers time (budget, threads, seed...).
    - force: replace an existing, non-empty output folder.
    - seed: seed of the random initialisation (when no weights are given).
    """

    formats: tuple[str, ...] = ("onnx",)
    precision: str = "fp32"
    batch: BatchSpec = field(default_factory=lambda: BatchSpec.static(1))
    opset: int = OPSET
    exporter: str = "torchscript"
    device: str = "cpu"
    input_size: int | None = None
    weights: Path | None = None
    inherit_from: Path | None = None
    simplify: bool = False
    measure: tuple[str, ...] | None = None
    measure_config: MeasureConfig = field(default_factory=MeasureConfig)
    force: bool = False
    seed: int = 0

    @property
    def measured_backends(self) -> tuple[str, ...]:
        if self.measure is not None:
            return self.measure
        return ("eager", "ort") + (("tensorrt",) if "tensorrt" in self.formats else ())

    def validate(self) -> None:
        """Refuse, before any work, a request that cannot be served (one-line UsageError)."""
        unknown = [name for name in self.formats if name not in FORMATS]
        if unknown or not self.formats:
            raise UsageError(f"--format {','.join(self.formats) or '(empty)'}: choose from {', '.join(FORMATS)}")
        if self.precision not in PRECISIONS:
            raise UsageError(f"--precision {self.precision}: export supports {' and '.join(PRECISIONS)}")
        if self.exporter not in EXPORTERS:
            raise UsageError(f"--exporter {self.exporter}: choose from {', '.join(EXPORTERS)}")
        if self.precision == "fp16" and not self.device.startswith("cuda"):
            raise UsageError(
                "--precision fp16 needs --device cuda:N: fp16 is checked and timed on the GPU "
                "(on the CPU, PyTorch and ONNX Runtime emulate it slowly and round differently)"
            )
        if self.weights is not None and self.inherit_from is not None:
            raise UsageError("give --weights or --inherit-from, not both")
        if self.input_size is not None and self.input_size < 1:
            raise UsageError(f"--input-size {self.input_size} is not positive")
        bad = [name for name in self.measured_backends if name not in MEASURE_BACKENDS]
        if bad:
            raise UsageError(f"--measure {bad[0]}: choose from {', '.join(MEASURE_BACKENDS)} or none")
        if "tensorrt" in self.measured_backends and "tensorrt" not in self.formats:
            raise UsageError("--measure tensorrt needs --format tensorrt (the engine is what is timed)")
        self._validate_opset()

    def _validate_opset(self) -> None:
        lowest, newest = OPSET_RANGE[self.exporter]
        if not lowest <= self.opset <= newest:
            raise UsageError(f"--opset {self.opset}: the {self.exporter} exporter here supports {lowest} to {newest}")
