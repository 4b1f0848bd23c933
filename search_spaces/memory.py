"""How much memory a network needs, known before a byte of it is allocated.

Widths of 100000, a resolution of 100000 or 10**12 classes in an
architecture file used to end in an allocation traceback (or the kernel's
OOM killer). The network is built on torch's "meta" device, which records
shapes and allocates nothing, and run once on a meta input: the parameter
count and the size of every layer's output come out exact, in well under a
second for the networks hwnas builds.

The estimate is an upper bound of an inference pass: parameters plus every
leaf module's output held at once (eager frees most of them earlier). A
training step roughly triples the parameters (gradients, optimiser state) and
keeps the activations for the backward pass; `training=True` counts that.
What does not fit in the machine's memory (MemAvailable, or the physical
memory where /proc/meminfo is absent) is refused in one line with the
estimate and what lowers it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

BYTES_PER_VALUE = 4  # fp32: the precision hwnas builds and trains in
TRAINING_ACTIVATIONS = 2.6
"""Activation copies a forward + backward holds per leaf output: measured, not assumed. A 224 px
proxyless supernet step grew by 0.42 GiB per image where the leaf outputs are 0.165 GiB
(benchmarks/search_memory.py; autograd also keeps ops' inner inputs and the gradients in flight)."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Parameters and activations (values, not bytes) of one network at one input shape."""

    parameters: int
    activations: int
    training: bool = False

    @property
    def bytes(self) -> int:
        copies = 4 if self.training else 1  # weights, gradients, two Adam/momentum buffers at most
        kept = TRAINING_ACTIVATIONS if self.training else 1.0
        return int((copies * self.parameters + kept * self.activations) * BYTES_PER_VALUE)


def estimate(build: Callable[[], nn.Module], input_shape: tuple[int, ...], *, training: bool = False,
             forward: Callable[[nn.Module, torch.Tensor], object] | None = None) -> MemoryEstimate:
    """The memory `build()` and one pass at `input_shape` need, measured on the meta device
    (nothing is allocated; the network's own code computes every shape). `forward(model, x)`
    runs the pass where the model takes more than its input (a supernet and its path weights)."""
    with torch.device("meta"):
        model = build()
    total = [0]

    def count(_module: nn.Module, _inputs: object, output: object) -> None:
        for tensor in output if isinstance(output, list | tuple) else (output,):
            if isinstance(tensor, torch.Tensor):
                total[0] += tensor.numel()

    hooks = [module.register_forward_hook(count) for module in model.modules() if not list(module.children())]
    try:
        with torch.no_grad():
            x = torch.empty(input_shape, device="meta")
            forward(model.eval(), x) if forward is not None else model.eval()(x)
    finally:
        for hook in hooks:
            hook.remove()
    return MemoryEstimate(sum(p.numel() for p in model.parameters()), total[0], training)


def available_bytes() -> int:
    """Memory this process may still use: MemAvailable of /proc/meminfo, else physical memory."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def gib(count: float) -> str:
    return f"{count / 2**30:,.1f} GiB" if count >= 2**27 else f"{count / 2**20:,.1f} MiB"


def refusal(need: MemoryEstimate, what: str, fix: str, *, limit: int | None = None) -> str | None:
    """One line saying that `what` needs more memory than there is (None when it fits)."""
    limit = available_bytes() if limit is None else limit
    if need.bytes <= limit:
        return None
    return (f"{what} would need about {gib(need.bytes)} ({need.parameters:,} parameters, {need.activations:,} "
            f"activation values) but this machine has {gib(limit)} available; {fix}")
