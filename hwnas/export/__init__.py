"""Export found networks to ONNX and TensorRT, verified and re-measured.

    from hwnas.export import ExportOptions, BatchSpec, export_network
    result = export_network("unas_gpu", "exports/unas", ExportOptions(batch=BatchSpec.static(32), device="cuda:0",
                                                                      formats=("onnx", "tensorrt")))
    print(result.latency_ms)   # {"eager": ..., "ort": ..., "tensorrt": ...} in ms

An export folder holds `arch.json`, `model.onnx` (checked, parity-tested
with ONNX Runtime), optionally `model.engine` with `model.layers.json` and
`timing.cache`, and `manifest.json` (hashes, versions, I/O specs, parity
figures, measured latency per backend). It appears complete or not at all.
"""

from __future__ import annotations

from hwnas.export.api import ExportResult, export_network
from hwnas.export.manifest import latency_results, read_manifest, verify_files
from hwnas.export.options import BatchSpec, ExportOptions
from hwnas.export.parity import Parity, ParityError
from hwnas.export.weights import calibrate_batchnorm, inherit_weights, load_weights, read_checkpoint

__all__ = [
    "BatchSpec",
    "ExportOptions",
    "ExportResult",
    "Parity",
    "ParityError",
    "calibrate_batchnorm",
    "export_network",
    "inherit_weights",
    "latency_results",
    "load_weights",
    "read_checkpoint",
    "read_manifest",
    "verify_files",
]
