"""Pure-Python parts of the GPU backends, testable on any machine: the TensorRT
inspector summary and the output-parity check shared by ORT and TensorRT."""

from __future__ import annotations

import json

import pytest
import torch

from profilers import ProfilerError
from profilers._onnx import compare_outputs
from profilers.backends.tensorrt import engine_precision


def test_engine_precision_counts_layer_output_formats() -> None:
    layers = {
        "Layers": [
            {"Name": "conv1", "Outputs": [{"Name": "a", "Format/Datatype": "Row major linear FP16 format (kLINEAR)"}]},
            {"Name": "conv2", "Outputs": [{"Name": "b", "Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}]},
            {"Name": "head", "Outputs": [{"Name": "c", "Format/Datatype": "Row major linear FP32 format (kLINEAR)"}]},
        ],
        "I/O Tensors": [{"Name": "input", "DataType": "Half"}],
    }
    assert engine_precision(json.dumps(layers)) == "fp16: 2 layers, fp32: 1 layers"


def test_engine_precision_reads_tensorrt_11s_split_format_and_data_type() -> None:
    """TensorRT 11's inspector splits 10.x's "Format/Datatype" into "Format" and "DataType" (NVIDIA's
    10.x-to-11.x IEngineInspector migration page); either field may name the precision."""
    layers = {"Layers": [
        {"Name": "conv1", "Outputs": [{"Name": "a", "Format": "Row major linear format (kLINEAR)", "DataType": "Half"}]},
        {"Name": "conv2", "Outputs": [{"Name": "b", "Format": "Channel major FP16 format where channel % 8 == 0",
                                       "DataType": "Half"}]},
        {"Name": "head", "Outputs": [{"Name": "c", "Format": "Row major linear format (kLINEAR)", "DataType": "Float"}]},
    ]}
    assert engine_precision(json.dumps(layers)) == "fp16: 2 layers, fp32: 1 layers"


def test_engine_precision_without_detail_says_unknown() -> None:
    assert engine_precision(json.dumps({"Layers": ["0", "1"]})).startswith("unknown")
    assert engine_precision("not json").startswith("unknown")


def test_compare_outputs_accepts_rounding_and_refuses_a_wrong_conversion() -> None:
    reference = torch.randn(4, 10)
    assert float(compare_outputs(reference, reference + 1e-6, "fp32", False, "ORT")) < 1e-5
    compare_outputs(reference, reference.half(), "fp16", True, "TensorRT")
    with pytest.raises(ProfilerError, match="--backend eager"):
        compare_outputs(reference, reference + 0.5, "fp32", False, "ORT")
