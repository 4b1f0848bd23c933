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
memory where /proc/meminfo is absent; less under an address-space limit) is refused in one line with the
estimate and what lowers it.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

BYTES_PER_VALUE = 4  # fp32: the precision hwnas builds and trains in
TRAINING_ACTIVATIONS = 2.6
"""Activation copies a forward + backward holds per leaf output: measured, not assumed. A 224 px
proxyless supernet step grew by 0.42 GiB per image where the leaf outputs are 0.165 GiB
(benchmarks/search_memory.py; autograd also keeps ops' inner inputs and the gradients in flight)."""


TENSOR_LIMIT = 2**63
"""Bytes torch can count in one tensor (64-bit sizes): a size beyond it overflows while building."""
TENSOR_LIMIT_TEXT = "8 EiB"


def overflowed(error: BaseException) -> bool:
    """Whether `error` is torch refusing a size its 64-bit count cannot hold (widths of 10**9 make a
    6*10**18-element weight: "Storage size calculation overflowed"; 10**30 does not fit a long long)."""
    return isinstance(error, RuntimeError | TypeError | OverflowError) and "overflow" in str(error).lower()


@dataclass(frozen=True)
class MemoryEstimate:
    """Parameters and activations (values, not bytes) of one network at one input shape."""

    parameters: int
    activations: int
    training: bool = False
    overflow: bool = False
    """Some tensor's size overflowed torch's 64-bit count on the meta device: beyond `TENSOR_LIMIT`."""

    @property
    def bytes(self) -> int:
        if self.overflow:
            return TENSOR_LIMIT
        copies = 4 if self.training else 1  # weights, gradients, two Adam/momentum buffers at most
        kept = TRAINING_ACTIVATIONS if self.training else 1.0
        return int((copies * self.parameters + kept * self.activations) * BYTES_PER_VALUE)


def estimate(build: Callable[[], nn.Module], input_shape: tuple[int, ...], *, training: bool = False,
             forward: Callable[[nn.Module, torch.Tensor], object] | None = None) -> MemoryEstimate:
    """The memory `build()` and one pass at `input_shape` need, measured on the meta device
    (nothing is allocated; the network's own code computes every shape). `forward(model, x)`
    runs the pass where the model takes more than its input (a supernet and its path weights)."""
    try:
        return _estimate(build, input_shape, training, forward)
    except (RuntimeError, TypeError, OverflowError) as error:
        if not overflowed(error):
            raise
        return MemoryEstimate(0, 0, training, overflow=True)


def _estimate(build: Callable[[], nn.Module], input_shape: tuple[int, ...], training: bool,
              forward: Callable[[nn.Module, torch.Tensor], object] | None) -> MemoryEstimate:
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
    """Memory this process may still use: MemAvailable of /proc/meminfo (else physical memory), or less
    where this process's address-space limit (RLIMIT_AS, as `ulimit -v` or prlimit sets it) leaves less: past
    it an allocation fails with a MemoryError whatever the machine has free."""
    free = _machine_available()
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    if soft != resource.RLIM_INFINITY:
        free = min(free, max(soft - _address_space(), 0))
    return free


def _machine_available() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _address_space() -> int:
    """Bytes of address space this process holds now (VmSize: what RLIMIT_AS counts); 0 where unknown."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def gib(count: float) -> str:
    """`count` bytes as MiB or GiB; beyond a pebibyte (an absurd size from a file) as a power of ten, which
    never overflows a float (a 400-digit count would)."""
    if count >= 2**50:
        return f"about 10^{len(str(int(count))) - 10} GiB"
    return f"{count / 2**30:,.1f} GiB" if count >= 2**27 else f"{count / 2**20:,.1f} MiB"


def layers_refusal(space: str, key: str, layers: int, layer_bytes: int, *, unit: str = "layer",
                   limit: int | None = None) -> str | None:
    """One line refusing a configuration whose `layers` (proxyless layers, DARTS cells) could not even be
    built in this machine's memory (None when they could).

    Checked before the space lists its layers: depths of 10**30 in an architecture file used to loop,
    appending layer specifications, until the kernel killed the process; the meta-device `estimate`
    comes too late, as it builds every layer. `layer_bytes` is what one layer takes at the least before
    any weight is allocated (its modules' Python objects, measured on the meta device with the space's
    cheapest choice and width 1), so the bound refuses nothing that fits."""
    limit = available_bytes() if limit is None else limit
    if layers * layer_bytes <= limit:
        return None
    count = f"{layers:,}" if layers < 10**15 else f"about 10^{len(str(layers)) - 1}"
    return (f"space {space!r}: {key} give {count} {unit}s, which would need at least {gib(layers * layer_bytes)} to "
            f"build ({layer_bytes // 1024} KiB a {unit} before any weight) but this machine has {gib(limit)} "
            f"available; lower {key}")


def refusal(need: MemoryEstimate, what: str, fix: str, *, limit: int | None = None) -> str | None:
    """One line saying that `what` needs more memory than there is (None when it fits)."""
    limit = available_bytes() if limit is None else limit
    if need.bytes <= limit:
        return None
    if need.overflow:
        return (f"{what} would need more than {TENSOR_LIMIT_TEXT} (a tensor's size overflows torch's 64-bit count) "
                f"but this machine has {gib(limit)} available; {fix}")
    return (f"{what} would need about {gib(need.bytes)} ({need.parameters:,} parameters, {need.activations:,} "
            f"activation values) but this machine has {gib(limit)} available; {fix}")
