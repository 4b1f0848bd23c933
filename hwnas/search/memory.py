"""The memory a search will need, known before its first step (issue #30 group 8).

An ImageNet-size search (224 px, batch 8) grew past 20 GiB in its first architecture step and was
killed by the kernel with nothing but "Killed": REBAR's relaxed evaluation runs every candidate of
every layer forward and keeps all of it for the backward. Now the search estimates its peak before
it writes anything and picks the `MemoryPlan` that fits, or refuses in one line with the estimate
and the flags that lower it. Every plan gives the batch's gradient, to floating-point rounding:

1. the whole batch, as before;
2. the whole batch with every relaxed decision point recomputed in the backward
   (`search_spaces.recompute`): the forward keeps the decision points' inputs, the backward reruns
   one decision point at a time, at the whole batch, so BatchNorm sees the batch's statistics;
3. micro-batches whose gradients accumulate (`LoopConfig.micro_batch`), only where no image's
   output depends on the others (`images_interact`: no BatchNorm normalising by batch statistics).
   Every supernet hwnas builds has BatchNorm in training mode, where a micro-batch would be
   normalised by its own statistics and give another (ghost-batch) gradient: there `--micro-batch`
   below the batch is refused and plan 2 bounds the memory instead.

`--batch-size` and `--arch-batch-size` stay the statistical batches under every plan.

The estimate runs the supernet on torch's "meta" device (shapes only, nothing allocated) and counts
the bytes autograd saves for the backward (`torch.autograd.graph.saved_tensors_hooks`): exact for
the graph, whatever functional code the candidates run, and attributed to the decision point that
saved them (`SavedBytes`). Peak = parameters x 3 (weights, gradients, SGD momentum) + the larger of
the weight step (the largest single path, or the trained mixture) and the differentiated relaxed
evaluations (two graphs at once with the whole batch under L_gen, REBAR "fresh" or tau tuning;
recomputed: their kept bytes and one decision point's graph) + the step's input batches, times
`ALLOCATOR_SLACK` for what the process holds beyond the live tensors (the allocator's unreturned
pages, torch's own runtime), measured against the peak resident memory of real steps.

The limit is the machine's available memory: MemAvailable of /proc/meminfo (else physical pages
by `os.sysconf`), or on CUDA the free device memory (`torch.cuda.mem_get_info`). The environment
variable `HWNAS_MEMORY_LIMIT_GIB` sets a lower cap (a shared machine, a container, the tests).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hwnas.errors import UsageError
from hwnas.search.config import SearchConfig
from hwnas.search.strategies import get_strategy
from search_spaces import SearchSpace
from search_spaces.memory import TENSOR_LIMIT_TEXT, gib, overflowed
from search_spaces.memory import available_bytes as host_available_bytes
from search_spaces.recompute import Recomputable, images_interact

LIMIT_VARIABLE = "HWNAS_MEMORY_LIMIT_GIB"
"""Environment variable: the memory (GiB) a search may use, when lower than what the machine has."""


MIN_MICRO_BATCH = 2
"""BatchNorm in training mode needs two values per channel: one image at a 1x1 layer has one."""

HEADROOM = 1.1
"""What the backward allocates beyond the saved tensors (gradients of the activations in flight): the
measured peaks of benchmarks/search_memory.py were 1.00-1.03x the saved bytes with micro-batches."""

RECOMPUTED_HEADROOM = 1.5
"""What a decision point holds while it is recomputed and differentiated, per byte it saves: its
candidates' activation gradients in flight beside the recomputed tensors. Measured 1.43x and 1.44x
(live CPU bytes of the torch profiler over one REBAR L_gen architecture step, 224 px proxyless,
batches 2 and 8, the kept bytes taken at `HEADROOM`)."""

ALLOCATOR_SLACK = 1.25
"""Peak resident memory over live bytes: without it the estimate of a 224 px proxyless REBAR L_gen step
(recomputed) was 1.36 GB at batch 8 and 2.66 GB at batch 16 while the process grew by 1.52 and 3.09 GB
(ru_maxrss above the built supernet, 1.12x and 1.16x; benchmarks/results/search_memory/cpu-224-recompute.json),
so a search the check let through could still be killed. 1.25 covers both with a margin."""


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


@dataclass(frozen=True)
class SavedBytes:
    """What autograd keeps for the backward of one relaxed forward (bytes, each tensor counted once)."""

    total: int
    """Everything, as a plain backward keeps it."""
    kept: int
    """With every decision point recomputed: what is saved outside them, and their inputs."""
    region: int
    """The largest decision point's own saved bytes: alive while the backward recomputes it."""


def saved_profile(net: nn.Module, weights: dict[str, Tensor], input_shape: tuple[int, ...]) -> SavedBytes:
    """`SavedBytes` of one forward of `net` (built on the meta device) at `weights` on an input of `input_shape`."""
    sizes: dict[int, int] = {}
    outside: set[int] = set()
    inputs: set[int] = set()
    regions: list[set[int]] = []
    kept_alive: list[Tensor] = []  # holds the tensors so that their ids are not reused during the count
    depth = [0]

    def note(tensor: Tensor) -> int:
        if id(tensor) not in sizes:
            sizes[id(tensor)] = tensor.numel() * tensor.element_size()
            kept_alive.append(tensor)
        return id(tensor)

    def pack(tensor: Tensor) -> Tensor:
        (regions[-1] if depth[0] else outside).add(note(tensor))
        return tensor

    def enter(_module: nn.Module, args: tuple) -> None:
        if depth[0] == 0:
            regions.append(set())
            for arg in args:  # Choice: x; FactorizedSlot: the cell's states so far (those it reads, and more)
                items = arg.values() if isinstance(arg, Mapping) else arg if isinstance(arg, list | tuple) else (arg,)
                for tensor in items:  # and the decisions' weights
                    if isinstance(tensor, Tensor):
                        inputs.add(note(tensor))
        depth[0] += 1

    def leave(_module: nn.Module, _args: tuple, _output: object) -> None:
        depth[0] -= 1

    points = [m for m in net.modules() if isinstance(m, Recomputable)]
    hooks = [h for m in points for h in (m.register_forward_pre_hook(enter), m.register_forward_hook(leave))]
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            net(torch.empty(input_shape, device="meta"), weights)
    finally:
        for hook in hooks:
            hook.remove()
    count = lambda ids: sum(sizes[i] for i in ids)  # noqa: E731
    return SavedBytes(total=count(outside.union(*regions)), kept=count(outside | inputs),
                      region=max((count(r) for r in regions), default=0))


def saved_bytes(net: nn.Module, weights: dict[str, Tensor], input_shape: tuple[int, ...]) -> int:
    """Bytes autograd keeps for the backward of one forward of `net` (built on the meta device) at
    `weights` on an input of `input_shape` (each saved tensor counted once)."""
    return saved_profile(net, weights, input_shape).total


@dataclass(frozen=True)
class Line:
    """Bytes that grow with the images: `fixed + per_image * images`."""

    fixed: int
    per_image: int

    @classmethod
    def through(cls, two: int, four: int) -> Line:
        """The line through the counts at two and four images (two, not one: BatchNorm in training mode
        refuses a single value per channel at a 1x1 layer)."""
        per_image = max(four - two, 0) // 2
        return cls(max(two - 2 * per_image, 0), per_image)

    def at(self, images: int) -> int:
        return self.fixed + self.per_image * images


@dataclass(frozen=True)
class MemoryPlan:
    """How a search's steps run: `micro_batch` images per forward and backward (None: each step's whole
    batch) and whether relaxed decision points are recomputed in the backward."""

    micro_batch: int | None = None
    recompute: bool = False

    def describe(self) -> str:
        pieces = "the whole batch" if self.micro_batch is None else f"micro-batch {self.micro_batch}"
        return pieces + (" with the relaxed evaluations recomputed in the backward" if self.recompute else "")


@dataclass(frozen=True)
class SearchMemory:
    """The parts of one search's peak, per `MemoryPlan` (bytes)."""

    parameters: int
    path: Line | None
    """The weight step's graph on the largest single path (None: the step trains the relaxed mixture)."""
    relaxed: Line
    """One differentiated relaxed (all-candidate) evaluation, plain."""
    kept: Line
    """... recomputed: what stays between its forward and its backward."""
    region: Line
    """... recomputed: the largest decision point's graph, alive while it is recomputed."""
    relaxed_graphs: int
    """How many relaxed graphs live at once with the whole batch (L_gen, REBAR fresh, tau tuning: 2)."""
    inputs: int
    weight_batch: int
    """The weight step's statistical batch (`--batch-size`)."""
    batch: int
    """The architecture step's statistical batch (`--arch-batch-size`)."""

    def evaluation(self, images: int, recompute: bool, graphs: int = 1) -> int:
        """`graphs` differentiated relaxed evaluations alive at once, at `images` each, with the backward's headroom."""
        if recompute:
            return int(HEADROOM * graphs * self.kept.at(images) + RECOMPUTED_HEADROOM * self.region.at(images))
        return int(HEADROOM * graphs * self.relaxed.at(images))

    def weight_step(self, plan: MemoryPlan) -> int:
        images = min(self.weight_batch, plan.micro_batch or self.weight_batch)
        if self.path is None:
            return self.evaluation(images, plan.recompute)
        return int(HEADROOM * self.path.at(images))

    def architecture_step(self, plan: MemoryPlan) -> int:
        whole = plan.micro_batch is None or plan.micro_batch >= self.batch
        images = self.batch if whole else plan.micro_batch
        return self.evaluation(images, plan.recompute, self.relaxed_graphs if whole else 1)

    def peak(self, plan: MemoryPlan) -> int:
        return int(ALLOCATOR_SLACK * (self.parameters + max(self.weight_step(plan), self.architecture_step(plan))
                                      + self.inputs))


def _uniform_paths(space: SearchSpace) -> list[dict[str, Tensor]]:
    """The paths taking the i-th choice at every decision (the last where a decision has fewer):
    in hwnas's spaces the largest kernel and expansion are the last choices, so one of these is the
    largest path."""
    most = max(len(d.choices) for d in space.decisions)
    return [{d.name: torch.nn.functional.one_hot(torch.tensor(min(i, len(d.choices) - 1)), len(d.choices)).float()
             for d in space.decisions} for i in range(most)]


def _relaxed(space: SearchSpace) -> dict[str, Tensor]:
    return {d.name: torch.full((len(d.choices),), 1.0 / len(d.choices), requires_grad=True) for d in space.decisions}


def meta_supernet(space: SearchSpace, *, weight_sharing: str, batchnorm: str) -> nn.Module:
    """The search's supernet on the meta device, in training mode (shapes only, nothing allocated)."""
    with torch.device("meta"):
        return space.supernet(weight_sharing=weight_sharing, batchnorm=batchnorm).train()


def estimate_search(space: SearchSpace, *, weight_sharing: str, batchnorm: str, batch_size: int, arch_batch: int,
                    trains_mixture: bool, relaxed_graphs: int, net: nn.Module | None = None) -> SearchMemory:
    """The parts of a search's peak (`SearchMemory`), from meta-device forwards of its supernet (`net`, or built)."""
    net = net if net is not None else meta_supernet(space, weight_sharing=weight_sharing, batchnorm=batchnorm)
    parameters = 3 * sum(p.numel() * p.element_size() for p in net.parameters())
    two, four = (saved_profile(net, _relaxed(space), space.input_shape(n)) for n in (2, 4))
    path = None
    if not trains_mixture:  # the largest path at two images, then its line (one meta forward per path, not two)
        largest = max(_uniform_paths(space), key=lambda p: saved_bytes(net, p, space.input_shape(2)))
        path = Line.through(*(saved_bytes(net, largest, space.input_shape(n)) for n in (2, 4)))
    inputs = 4 * math.prod(space.input_shape(1)) * (batch_size + 2 * arch_batch)
    return SearchMemory(parameters, path, Line.through(two.total, four.total), Line.through(two.kept, four.kept),
                        Line.through(two.region, four.region), relaxed_graphs, inputs, batch_size, arch_batch)


def plans(memory: SearchMemory, given: int | None, *, pieces: bool) -> list[MemoryPlan]:
    """The plans a search may run, in the order it prefers them: `given` micro-batch (plain, then recomputed),
    else the whole batch (plain, then recomputed), then, where micro-batches are exact (`pieces`), the
    largest micro-batch plain and recomputed."""
    largest = max(memory.batch, memory.weight_batch)
    if given is not None and given < largest:
        return [MemoryPlan(given), MemoryPlan(given, recompute=True)]
    ordered = [MemoryPlan(), MemoryPlan(recompute=True)]
    if pieces:
        smaller = range(largest - 1, MIN_MICRO_BATCH - 1, -1)
        ordered += [MemoryPlan(m) for m in smaller] + [MemoryPlan(m, recompute=True) for m in smaller]
    return ordered


def choose_plan(memory: SearchMemory, given: int | None, limit: int, *, pieces: bool) -> MemoryPlan | None:
    """The first of `plans` whose peak fits in `limit` bytes; None: none fits."""
    return next((plan for plan in plans(memory, given, pieces=pieces) if memory.peak(plan) <= limit), None)


def refusal(memory: SearchMemory, plan: MemoryPlan, limit: int, device: str, flags: str) -> UsageError:
    """The one line of a search that will not fit: the estimate, its parts, the limit and what lowers it."""
    where = "this GPU has" if device.startswith("cuda") else "this machine has"
    capped = f" ({LIMIT_VARIABLE})" if os.environ.get(LIMIT_VARIABLE, "").strip() else ""
    return UsageError(
        f"this search would need about {gib(memory.peak(plan))} with {plan.describe()} (parameters with gradients "
        f"and momentum {gib(memory.parameters)}, weight step {gib(memory.weight_step(plan))}, relaxed evaluation of "
        f"every candidate {gib(memory.architecture_step(plan))}, times {ALLOCATOR_SLACK} for the allocator) but {where} {gib(limit)} available{capped}; "
        f"lower {flags}")


def ghost_batch_refusal(micro_batch: int, space: SearchSpace) -> UsageError:
    return UsageError(
        f"--micro-batch {micro_batch} cannot apply: the {space.name} supernet's BatchNorm normalises each micro-batch "
        "by its own statistics, so its gradient would not be the batch's; leave --micro-batch out (a search short of "
        "memory recomputes the batch's activations in the backward instead, which is exact)")


def search_memory_plan(config: SearchConfig, space: SearchSpace, device: str) -> MemoryPlan:
    """The plan this search runs (`loop.micro_batch` where exact, or the first that fits); raises the one-line
    `UsageError` of `refusal` when not even the leanest fits, or `ghost_batch_refusal` for a micro-batch that
    would change the gradient. Called before anything is written."""
    loop = config.loop
    arch_batch = loop.arch_batch_size or loop.batch_size
    strategy = get_strategy(config.estimator.accuracy)
    mixture = config.rule == "sample" and strategy.trains != "single path"  # every candidate in the weight step
    per_objective = 2 if config.estimator.objective == "gen" else 1
    try:
        net = meta_supernet(space, weight_sharing=config.supernet.weight_sharing, batchnorm=config.supernet.batchnorm)
        interact = images_interact(net)
        if loop.micro_batch is not None and loop.micro_batch < max(arch_batch, loop.batch_size) and interact:
            raise ghost_batch_refusal(loop.micro_batch, space)
        memory = estimate_search(space, weight_sharing=config.supernet.weight_sharing,
                                 batchnorm=config.supernet.batchnorm, batch_size=loop.batch_size, arch_batch=arch_batch,
                                 trains_mixture=mixture, relaxed_graphs=per_objective * strategy.graphs(config.estimator),
                                 net=net)
    except (RuntimeError, TypeError, OverflowError) as error:
        if not overflowed(error):
            raise
        raise UsageError(f"this search would need more than {TENSOR_LIMIT_TEXT} (a tensor's size overflows torch's "
                         "64-bit count); lower --image-size or the space's widths and resolution (--space-option)") from None
    limit = available_bytes(device)
    pieces = not interact and not config.second_order  # accumulated pieces carry first derivatives only
    chosen = choose_plan(memory, loop.micro_batch, limit, pieces=pieces)
    if chosen is not None:
        return chosen
    leanest = plans(memory, loop.micro_batch, pieces=pieces)[-1]
    flags = "--batch-size, --arch-batch-size" + (", --micro-batch" if pieces else "")
    raise refusal(memory, leanest, limit, device, f"{flags}, --image-size or the space's widths (--space-option)")
