"""The memory a search will need, known before its first step (issue #30 group 8).

An ImageNet-size search (224 px, batch 8) grew past 20 GiB in its first architecture step and was
killed by the kernel with nothing but "Killed": REBAR's relaxed evaluation runs every candidate of
every layer forward and keeps all of it for the backward. Now the search estimates its peak before
it writes anything and picks the micro-batch (`LoopConfig.micro_batch`) that fits, or refuses in
one line with the estimate and the flags that lower it.

The estimate runs the supernet on torch's "meta" device (shapes only, nothing allocated) and counts
the bytes autograd saves for the backward (`torch.autograd.graph.saved_tensors_hooks`): exact for
the graph, whatever functional code the candidates run. Peak = parameters x 3 (weights, gradients,
SGD momentum) + the larger of the weight step (the largest single path at `batch_size`, or the
trained mixture at the micro-batch) and one differentiated relaxed evaluation at the micro-batch
(two with the full batch under L_gen, REBAR "fresh" or tau tuning, whose graphs live together)
+ the step's input batches. It leaves out the allocator's slack and torch's own runtime.

The limit is the machine's available memory: MemAvailable of /proc/meminfo (else physical pages
by `os.sysconf`), or on CUDA the free device memory (`torch.cuda.mem_get_info`). The environment
variable `HWNAS_MEMORY_LIMIT_GIB` sets a lower cap (a shared machine, a container, the tests).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hwnas.errors import UsageError
from hwnas.search.config import SearchConfig
from hwnas.search.strategies import get_strategy
from search_spaces import SearchSpace
from search_spaces.memory import TENSOR_LIMIT_TEXT, gib, overflowed
from search_spaces.memory import available_bytes as host_available_bytes

LIMIT_VARIABLE = "HWNAS_MEMORY_LIMIT_GIB"
"""Environment variable: the memory (GiB) a search may use, when lower than what the machine has."""


MIN_MICRO_BATCH = 2
"""BatchNorm in training mode needs two values per channel: one image at a 1x1 layer has one."""

HEADROOM = 1.1
"""What the backward allocates beyond the saved tensors (gradients of the activations in flight): the
measured peaks of benchmarks/search_memory.py were 1.00-1.03x the saved bytes with micro-batches."""


def available_bytes(device: str = "cpu") -> int:
    """What this search may still allocate on `device` (see the module docstring), capped by
    `HWNAS_MEMORY_LIMIT_GIB` when that is set."""
    if device.startswith("cuda"):
        free = int(torch.cuda.mem_get_info(torch.device(device))[0])
    else:
        free = host_available_bytes()
    cap = os.environ.get(LIMIT_VARIABLE)
    if cap is None or not cap.strip():
        return free
    try:
        limit = float(cap)
    except ValueError:
        limit = math.nan
    if not 0 < limit < math.inf:
        raise UsageError(f"{LIMIT_VARIABLE}={cap!r} is not a positive number of GiB; set e.g. {LIMIT_VARIABLE}=8 or unset it")
    return min(free, int(limit * 2**30))


def saved_bytes(net: nn.Module, weights: dict[str, Tensor], input_shape: tuple[int, ...]) -> int:
    """Bytes autograd keeps for the backward of one forward of `net` (built on the meta device) at
    `weights` on an input of `input_shape` (each saved tensor counted once)."""
    seen: dict[int, int] = {}
    kept: list[Tensor] = []  # holds the tensors so that their ids are not reused during the count

    def pack(tensor: Tensor) -> Tensor:
        if id(tensor) not in seen:
            seen[id(tensor)] = tensor.numel() * tensor.element_size()
            kept.append(tensor)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        net(torch.empty(input_shape, device="meta"), weights)
    return sum(seen.values())


@dataclass(frozen=True)
class SearchMemory:
    """The peak estimate of one search (bytes) and its parts."""

    parameters: int
    weight_step: int
    """Graph of the weight step (per micro-batch piece)."""
    relaxed_fixed: int
    """Graph of one differentiated all-candidate evaluation: what does not grow with the images (weight crops)."""
    relaxed_per_image: int
    """... and what grows with each image."""
    relaxed_graphs: int
    """How many such graphs live at once with the whole batch (L_gen, REBAR fresh, tau tuning: 2)."""
    inputs: int
    batch: int
    """The architecture step's statistical batch."""

    def peak(self, micro_batch: int) -> int:
        graphs = self.relaxed_graphs if micro_batch >= self.batch else 1
        return self.parameters + max(self.weight_step, graphs * self.relaxed(micro_batch)) + self.inputs

    def relaxed(self, micro_batch: int) -> int:
        """One differentiated relaxed evaluation at `micro_batch` images, with the backward's headroom."""
        return int(HEADROOM * (self.relaxed_fixed + self.relaxed_per_image * min(micro_batch, self.batch)))


def _uniform_paths(space: SearchSpace) -> list[dict[str, Tensor]]:
    """The paths taking the i-th choice at every decision (the last where a decision has fewer):
    in hwnas's spaces the largest kernel and expansion are the last choices, so one of these is the
    largest path."""
    most = max(len(d.choices) for d in space.decisions)
    return [{d.name: torch.nn.functional.one_hot(torch.tensor(min(i, len(d.choices) - 1)), len(d.choices)).float()
             for d in space.decisions} for i in range(most)]


def _relaxed(space: SearchSpace) -> dict[str, Tensor]:
    return {d.name: torch.full((len(d.choices),), 1.0 / len(d.choices), requires_grad=True) for d in space.decisions}


def estimate_search(space: SearchSpace, *, weight_sharing: str, batchnorm: str, batch_size: int, arch_batch: int,
                    micro_batch: int | None, trains_mixture: bool, relaxed_graphs: int) -> SearchMemory:
    """The parts of a search's peak (`SearchMemory`), from meta-device forwards of its supernet."""
    with torch.device("meta"):
        net = space.supernet(weight_sharing=weight_sharing, batchnorm=batchnorm).train()
    parameters = 3 * sum(p.numel() * p.element_size() for p in net.parameters())
    one = space.input_shape(1)
    # two images, not one: BatchNorm in training mode refuses a single value per channel (a 1x1 layer)
    two, four = (saved_bytes(net, _relaxed(space), space.input_shape(n)) for n in (2, 4))
    per_image = (four - two) // 2
    fixed = max(two - 2 * per_image, 0)
    if trains_mixture:
        weight_step = int(HEADROOM * (fixed + per_image * min(batch_size, micro_batch or batch_size)))
    else:
        step_shape = space.input_shape(min(batch_size, micro_batch or batch_size))
        weight_step = int(HEADROOM * max(saved_bytes(net, path, step_shape) for path in _uniform_paths(space)))
    inputs = 4 * math.prod(one) * (batch_size + 2 * arch_batch)
    return SearchMemory(parameters, weight_step, fixed, per_image, relaxed_graphs, inputs, arch_batch)


def choose_micro_batch(memory: SearchMemory, given: int | None, limit: int, *, whole_only: bool) -> int | None:
    """The micro-batch that fits in `limit` bytes: `given`, or the whole batch, or the largest smaller
    one (`whole_only`: a second-order backward, the whole batch or nothing). None: nothing fits."""
    if given is not None:
        return given if memory.peak(given) <= limit else None
    if memory.peak(memory.batch) <= limit:
        return memory.batch
    if whole_only:
        return None
    fitting = [m for m in range(memory.batch - 1, MIN_MICRO_BATCH - 1, -1) if memory.peak(m) <= limit]
    return fitting[0] if fitting else None


def refusal(memory: SearchMemory, micro_batch: int, limit: int, device: str, flags: str) -> UsageError:
    """The one line of a search that will not fit: the estimate, its parts, the limit and what lowers it."""
    relaxed = memory.relaxed(micro_batch) * (memory.relaxed_graphs if micro_batch >= memory.batch else 1)
    where = "this GPU has" if device.startswith("cuda") else "this machine has"
    capped = f" ({LIMIT_VARIABLE})" if os.environ.get(LIMIT_VARIABLE, "").strip() else ""
    return UsageError(
        f"this search would need about {gib(memory.peak(micro_batch))} at micro-batch {micro_batch} (parameters with "
        f"gradients and momentum {gib(memory.parameters)}, weight step {gib(memory.weight_step)}, relaxed evaluation of "
        f"every candidate {gib(relaxed)}) but {where} {gib(limit)} available{capped}; lower {flags}")


def search_micro_batch(config: SearchConfig, space: SearchSpace, device: str) -> int:
    """The micro-batch this search runs at (`loop.micro_batch`, or the largest that fits); raises the
    one-line `UsageError` of `refusal` when not even that fits. Called before anything is written."""
    loop = config.loop
    arch_batch = loop.arch_batch_size or loop.batch_size
    strategy = get_strategy(config.estimator.accuracy)
    mixture = config.rule == "sample" and strategy.trains != "single path"  # every candidate in the weight step
    per_objective = 2 if config.estimator.objective == "gen" else 1
    try:
        memory = estimate_search(space, weight_sharing=config.supernet.weight_sharing,
                                 batchnorm=config.supernet.batchnorm, batch_size=loop.batch_size, arch_batch=arch_batch,
                                 micro_batch=loop.micro_batch, trains_mixture=mixture,
                                 relaxed_graphs=per_objective * strategy.graphs(config.estimator))
    except (RuntimeError, TypeError, OverflowError) as error:
        if not overflowed(error):
            raise
        raise UsageError(f"this search would need more than {TENSOR_LIMIT_TEXT} (a tensor's size overflows torch's "
                         "64-bit count); lower --image-size or the space's widths and resolution (--space-option)") from None
    limit = available_bytes(device)
    chosen = choose_micro_batch(memory, loop.micro_batch, limit, whole_only=config.second_order)
    if chosen is not None:
        return chosen
    smallest = loop.micro_batch or (arch_batch if config.second_order else min(MIN_MICRO_BATCH, arch_batch))
    flags = ("--micro-batch, --batch-size, --arch-batch-size" if not config.second_order
             else "--arch-batch-size, --batch-size (a second-order backward cannot use --micro-batch)")
    raise refusal(memory, smallest, limit, device, f"{flags}, --image-size or the space's widths (--space-option)")
