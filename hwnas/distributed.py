"""Data-parallel search and training with torch.distributed, launched by `torchrun`.

Everything here is PyTorch's own mechanism, used the documented way:

* `init_from_env` reads what torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK,
  MASTER_ADDR, MASTER_PORT) and calls `init_process_group` ("env://"):
  NCCL on CUDA, gloo on the CPU. Without those variables it is a single
  process and every helper below is a no-op.
* `wrap` puts the network in `DistributedDataParallel`; its gradient
  all-reduce averages the weight gradients over ranks during backward.
  Supernets run one path per step, so they are wrapped with
  `find_unused_parameters=True`.
* The architecture parameters are not in DDP: `average_gradients_before_step`
  registers an optimizer step pre-hook (`Optimizer.register_step_pre_hook`)
  that all-reduces (averages) their gradients, whoever computed them.
  Identical initial logits (`broadcast_`) + identical averaged gradients +
  the same optimizer = identical logits on every rank after every step, so
  the derived architecture is the same on every rank.
* One architecture sample per step for all ranks: `shared_sampling` draws a
  seed on rank 0 and broadcasts it; inside the block torch's generators
  (CPU and the current CUDA device, via `torch.random.fork_rng`) are
  seeded with it, so every rank draws the same Gumbel noise and hence the
  same sample b (and the same relaxations); outside the block each rank's own
  stream continues (dropout, augmentation differ per rank as they should).
  `broadcast_choices` additionally makes rank 0's hard choices
  authoritative, and `agree` checks that ranks hold equal tensors.
* Latency: only one designated rank (`LATENCY_RANK`, 0) times sampled
  architectures on its own GPU and broadcasts the value (`RankOracle`), so
  one device's latency is optimised even on a heterogeneous node, other
  ranks never compete for that GPU's clocks while it times, and the
  measurement log is written once. (Timing on each rank's own device
  would slow every step by the slowest timing and mix devices.)
* Only rank 0 writes files (`DistInfo.is_main`).
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from hwnas.errors import UsageError

LATENCY_RANK = 0
"""The rank that measures latency during search (on its own device)."""


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job; world_size 1 when not launched by torchrun."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and prints progress."""
        return self.rank == 0


def init_from_env(device: str = "cpu", *, timeout_s: float = 1800.0) -> DistInfo:
    """Join the process group torchrun describes; the device becomes cuda:LOCAL_RANK on CUDA.

    `device` is "cpu" or "cuda"/"cuda:N" (N is ignored under torchrun: each
    process takes the GPU of its local rank).
    """
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {device}, but torch sees no CUDA device here; use --device cpu")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(device=device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local_rank)
        device, backend = f"cuda:{local_rank}", "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return DistInfo(rank, world, local_rank, device, backend)


def shutdown(*, wait_for_peers: bool = True) -> None:
    """Tear the process group down; on a normal exit, only once every rank has got here.

    Under gloo a rank that destroys its connections while a peer is still finishing the last collective on them
    kills that peer (SIGABRT, "terminate called without an active exception"; seen in CI on 2 ranks). After an
    error the peers may never reach the barrier, so callers pass `wait_for_peers=False` then.
    """
    if dist.is_available() and dist.is_initialized():
        if wait_for_peers:
            dist.barrier()
        dist.destroy_process_group()


def wrap(model: nn.Module, info: DistInfo, *, find_unused_parameters: bool = False) -> nn.Module:
    """`model` in DistributedDataParallel when distributed (else unchanged)."""
    if not info.enabled:
        return model
    ids = [torch.device(info.device).index] if info.device.startswith("cuda") else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused_parameters)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DDP (for state_dicts, attributes, and passes without a weight backward)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def _collective_device(info: DistInfo) -> torch.device:
    """Where a collective's buffer must live: the rank's GPU for NCCL, the CPU for gloo."""
    return torch.device(info.device) if info.backend == "nccl" else torch.device("cpu")


def broadcast_(tensors: Iterable[Tensor], info: DistInfo, src: int = 0) -> None:
    """Overwrite `tensors` in place with rank `src`'s values."""
    if info.enabled:
        for tensor in tensors:
            dist.broadcast(tensor.data, src)


def all_reduce_mean_(tensors: Iterable[Tensor], info: DistInfo) -> None:
    """Replace each tensor by its mean over ranks, in one collective."""
    items = list(tensors)
    if not info.enabled or not items:
        return
    flat = torch.cat([t.detach().reshape(-1) for t in items]).to(_collective_device(info))
    dist.all_reduce(flat)
    flat /= info.world_size
    for tensor, chunk in zip(items, flat.split([t.numel() for t in items]), strict=True):
        tensor.copy_(chunk.view_as(tensor))


def average_gradients_before_step(optimizer: torch.optim.Optimizer, info: DistInfo) -> None:
    """Make `optimizer.step()` first average its parameters' gradients over ranks.

    For parameters outside DDP (architecture logits). A parameter without a
    gradient on this rank contributes zeros, so every rank joins the same
    collective.
    """
    if not info.enabled:
        return

    def hook(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        params = [p for group in opt.param_groups for p in group["params"]]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        all_reduce_mean_([p.grad for p in params], info)  # type: ignore[misc]

    optimizer.register_step_pre_hook(hook)


@contextlib.contextmanager
def shared_sampling(info: DistInfo) -> Iterator[int | None]:
    """Inside: torch's generators seeded by rank 0's broadcast seed (identical draws on every rank)."""
    if not info.enabled:
        yield None
        return
    seed = torch.randint(0, 2**62, (1,), dtype=torch.int64).to(_collective_device(info))
    dist.broadcast(seed, 0)
    devices = [torch.device(info.device).index] if info.device.startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed.item()))
        yield int(seed.item())


def broadcast_choices(index: Mapping[str, Tensor], info: DistInfo, src: int = 0) -> dict[str, Tensor]:
    """Rank `src`'s sampled choice indices, on every rank (a copy; int64 tensors)."""
    copies = {name: value.detach().clone() for name, value in index.items()}
    broadcast_(copies.values(), info, src)
    return copies


def broadcast_float(value: float | None, info: DistInfo, src: int = 0) -> float:
    """A number known on rank `src` (e.g. a latency in ms), on every rank."""
    if not info.enabled:
        return float(value)  # type: ignore[arg-type]
    holder = torch.tensor([float("nan") if value is None else value], dtype=torch.float64, device=_collective_device(info))
    dist.broadcast(holder, src)
    return float(holder.item())


def agree(tensors: Mapping[str, Tensor], info: DistInfo) -> bool:
    """Whether every rank holds exactly these values (all-gather and compare; for checks and tests)."""
    if not info.enabled:
        return True
    flat = torch.cat([t.detach().reshape(-1).double() for t in tensors.values()]).to(_collective_device(info))
    gathered = [torch.empty_like(flat) for _ in range(info.world_size)]
    dist.all_gather(gathered, flat)
    return all(torch.equal(gathered[0], other) for other in gathered[1:])


def any_rank(flag: bool, info: DistInfo) -> bool:
    """True on every rank if it is true on any (a stop request must stop all ranks at the same step)."""
    if not info.enabled:
        return flag
    value = torch.tensor([1 if flag else 0], device=_collective_device(info))
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """`obj` of every rank, in rank order, on every rank (e.g. RNG states for a checkpoint)."""
    if not info.enabled:
        return [obj]
    gathered: list[Any] = [None] * info.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


class RankOracle:
    """A latency oracle whose `latency_ms` runs on `LATENCY_RANK` only and is broadcast.

    Wraps anything with `latency_ms(arch) -> float` (hwnas.search's
    LatencyOracle). Every rank keeps the same ordered memo, so `measured()`
    (the online surrogate's training data) is identical everywhere; the
    wrapped oracle (and its log file) exists on the measuring rank only.
    """

    def __init__(self, oracle: Any | None, info: DistInfo, space: Any) -> None:
        if info.rank == LATENCY_RANK and oracle is None:
            raise ValueError(f"rank {LATENCY_RANK} measures latency and needs the oracle")
        self.oracle, self.info, self.space = oracle, info, space
        self._memo: dict[tuple[str, ...], float] = {}

    def __len__(self) -> int:
        return len(self._memo)

    def latency_ms(self, arch: Any) -> float:
        key = tuple(arch.choices[d.name] for d in self.space.decisions)
        if key not in self._memo:
            value = self.oracle.latency_ms(arch) if self.info.rank == LATENCY_RANK else None
            self._memo[key] = broadcast_float(value, self.info, LATENCY_RANK)
        return self._memo[key]

    def measured(self) -> list[tuple[dict[str, str], float]]:
        names = [d.name for d in self.space.decisions]
        return [(dict(zip(names, key, strict=True)), ms) for key, ms in self._memo.items()]

    def __getattr__(self, name: str) -> Any:
        if self.oracle is None:
            raise AttributeError(f"{name}: the latency oracle lives on rank {LATENCY_RANK}")
        return getattr(self.oracle, name)
