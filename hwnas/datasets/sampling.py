"""Sample order and augmentation randomness that a checkpoint can resume exactly.

A DataLoader's position inside an epoch, and the random state of its
worker processes, are not part of any state_dict in PyTorch. We make both a
function of numbers a checkpoint already holds:

* `SeededSampler` gives, per epoch, the permutation `DistributedSampler`
  gives for (seed, epoch) — sharded by rank the same way — and can start an
  epoch after `skip` samples. The training loop derives (epoch, skip) from
  its step counter, so resuming at step k reads exactly the batches an
  uninterrupted run reads from step k on.
* Each index comes with its own seed (from seed, epoch and index), and
  `SeededDataset` runs the wrapped dataset's transform under that seed, so
  the crop / flip / cutout of a sample does not depend on the number of
  workers, on which worker loads it, or on a restart.
"""

from __future__ import annotations

import math
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from hwnas.errors import UsageError


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for one sample's augmentation (independent of rank and worker)."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(2, np.uint64)[0] >> np.uint64(1))


class SeededSampler(Sampler[tuple[int, int]]):
    """Yields (index, sample seed); every `iter()` is the next epoch.

    `world_size` > 1 shards like `DistributedSampler` (each rank gets
    ceil(N / world) indices, padded by repetition unless `drop_last`).
    """

    def __init__(self, size: int, *, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1,
                 drop_last: bool = False) -> None:
        self.seed = int(seed)
        self._inner = DistributedSampler(range(size), num_replicas=world_size, rank=rank, shuffle=shuffle,  # type: ignore[arg-type]
                                         seed=self.seed, drop_last=drop_last)
        self.epoch = 0
        self.skip = 0

    def set_position(self, epoch: int, skip: int = 0) -> None:
        """The next `iter()` yields epoch `epoch` from its `skip`-th sample on."""
        self.epoch, self.skip = int(epoch), int(skip)

    def __len__(self) -> int:
        return len(self._inner)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        self._inner.set_epoch(self.epoch)
        epoch, skip = self.epoch, self.skip
        self.epoch, self.skip = self.epoch + 1, 0
        return iter([(index, sample_seed(self.seed, epoch, index)) for index in list(self._inner)[skip:]])


class SeededDataset(Dataset):
    """`dataset[index]` computed with torch's CPU generator seeded by the sample's seed.

    `fork_rng` restores the caller's generator afterwards, so loading never
    disturbs the training loop's own random stream.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]


def usable_cores() -> int:
    """CPU cores this process may run on: its affinity, lowered by a cgroup CPU quota (a container
    limited to 1.5 CPUs has 2 cores in its affinity mask but the time of 1.5)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def seeded_loader(dataset: Dataset, batch_size: int, *, seed: int = 0, shuffle: bool = True, rank: int = 0,
                  world_size: int = 1, drop_last: bool = False, num_workers: int = 0,
                  pin_memory: bool | None = None) -> torch.utils.data.DataLoader:
    """A DataLoader whose order and augmentations are functions of (seed, epoch, index).

    Reach the sampler through `loader.sampler` to resume mid-epoch
    (`set_position`). Pinned memory defaults to on when CUDA is present
    (page-locked host buffers make the host-to-device copy asynchronous).
    """
    sampler = SeededSampler(len(dataset), seed=seed, shuffle=shuffle, rank=rank, world_size=world_size)  # type: ignore[arg-type]
    num_workers = min(num_workers, usable_cores())  # more workers than cores only contend (torch warns)
    return torch.utils.data.DataLoader(
        SeededDataset(dataset), batch_size=batch_size, sampler=sampler, drop_last=drop_last, num_workers=num_workers,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory, persistent_workers=num_workers > 0,
        worker_init_fn=leave_signals_to_main if num_workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),  # its base seed must not draw from the global generator
    )


def leave_signals_to_main(worker_id: int) -> None:
    """Workers ignore SIGINT and SIGTERM (a Ctrl-C or a scheduler's scancel reaches the whole process
    group): the main process stops at a step boundary (`hwnas.checkpoint.StopSignal`), checkpoints,
    and its workers exit with it, instead of dying first and failing the step in progress."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def endless_from(loader: torch.utils.data.DataLoader, consumed: int = 0) -> Iterator[Any]:
    """Batches forever, starting after the first `consumed` ones, as an uninterrupted stream would.

    For loops that count steps, not epochs (the bi-level search): a loop
    resumed at step k passes the number of batches this stream had given by
    then. Needs a `seeded_loader` (its sampler knows epochs and offsets).
    """
    sampler = loader.sampler
    if not isinstance(sampler, SeededSampler):
        raise TypeError("endless_from needs a loader made by seeded_loader")
    per_epoch = len(loader)
    if per_epoch == 0:
        raise UsageError(f"batch size {loader.batch_size} is larger than this process's share of the split "
                         f"({len(sampler)} images); use a smaller batch")
    epoch, offset = divmod(consumed, per_epoch)
    sampler.set_position(epoch, offset * int(loader.batch_size or 1))
    while True:
        yield from loader
