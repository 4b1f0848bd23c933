"""fp16 / bf16 in the eager backend are the model's own half weights and a half input (`.half()` as
deployed), not autocast: no cast is made in front of any conv / linear / batch-norm layer.

The H200 run (2026-11-27) timed plain eager fp16 slower than fp32 for launch-bound nets; this test
rules out casts added by hwnas as the cause. `layer_casts` is the GPU re-check's counter
(benchmarks/gpu_recheck.py); the autocast forward beside it shows the counter sees casts when they are there.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch
import torchvision
from torch.profiler import ProfilerActivity, profile

from benchmark_scripts import load_benchmark

from profilers import MeasureConfig
from profilers.backends import PrepareRequest, get_backend

SHAPE = (1, 3, 32, 32)


def _recheck():  # noqa: ANN202
    return load_benchmark("gpu_recheck")


def _events(run) -> list:  # noqa: ANN001
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    return list(prof.events())


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_eager_half_precision_is_half_weights_without_casts(precision: str) -> None:
    model = torchvision.models.mobilenet_v2(num_classes=10)
    request = PrepareRequest(model, torch.device("cpu"), SHAPE, precision, 1, MeasureConfig(), Path(tempfile.gettempdir()), "m")
    runner = get_backend("eager").prepare(request)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    tensors = [*runner.model.parameters(), *(b for b in runner.model.buffers() if b.is_floating_point())]
    assert {t.dtype for t in tensors} == {dtype} and runner.input.dtype == dtype
    assert _recheck().layer_casts(_events(runner)) == 0


def test_the_cast_counter_sees_autocast() -> None:
    model = torchvision.models.mobilenet_v2(num_classes=10).eval()
    x = torch.randn(SHAPE)

    def autocast_forward() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(x)

    assert _recheck().layer_casts(_events(autocast_forward)) >= 50  # one per conv (52) and the classifier
