"""Process-wide math settings that change GPU latency: set only while timing, always recorded.

`torch.backends.cudnn.benchmark` and the TF32 switches are process globals. A
profiler that sets them and walks away changes the numerics and speed of
whatever runs next in the process (training on the rank that measured
latency, say), so `cudnn_benchmark` restores the caller's value. TF32 is never
changed (docs/design.md#5-measuring-latency: record, do not touch), only described: an fp32
number from cuDNN with TF32 convolutions is not the same measurement as one
without.

`torch_threads` is the same discipline for torch's intra-op thread count, the
one process global that changes CPU latency and training speed alike: the
profilers time with exactly the threads asked for, and search and training run
with one thread by default (two OpenMP threads on two cores that other
processes also use run small convolutions ~20x slower); the caller's count is
restored after.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def cudnn_benchmark(enabled: bool = True) -> Iterator[None]:
    """cuDNN autotuning on while measuring (docs/design.md#5-measuring-latency); the caller's setting after."""
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with `count` intra-op threads (None: unchanged); the caller's count after."""
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def torch_math_mode() -> str:
    """PyTorch's effective fp32 math on CUDA, e.g. 'cuBLAS fp32 matmul: ieee; cuDNN fp32 conv: tf32'.

    Read through the `allow_tf32` flags, which report the effective setting
    whichever API (the older `allow_tf32` or the newer `fp32_precision`) set it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch >= 2.9 calls allow_tf32 a legacy API
        matmul = torch.backends.cuda.matmul.allow_tf32
        conv = torch.backends.cudnn.allow_tf32
    return (
        f"cuBLAS fp32 matmul: {'tf32' if matmul else 'ieee'}; cuDNN fp32 conv: {'tf32' if conv else 'ieee'}; "
        f"cudnn.benchmark: {torch.backends.cudnn.benchmark}"
    )
