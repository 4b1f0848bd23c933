"""Retraining a found network from scratch, resumable to the exact step (the one loop,
`hwnas.train.steps.train_steps`, with this recipe around it).

    for each step:  lr from warm-up + cosine (per step), drop-path by epoch (DARTS)
                    loss = CE_smoothed(logits) + w_aux * CE_smoothed(aux logits)
                    SGD (Nesterov) after gradient-norm clipping
    every epoch:    test-split accuracy (the held-out set: CIFAR test_batch, ImageNet val/)
    every N steps, on SIGINT/SIGTERM and at the end: checkpoint.pt

The run directory holds metrics.jsonl (one line per `log_every` steps and
per evaluation), checkpoint.pt (weights, optimiser, scheduler, every rank's
RNG states, step counter; its "state_dict" is what `hwnas export --weights`
loads), arch.json (the architecture as trained) and summary.json (final
accuracy, measured latency in ms). `--resume` restores all of it and drops
metric lines written after the checkpoint, so the trajectory equals an
uninterrupted run of the same seed. Under torchrun every rank trains its
shard; only rank 0 writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import ConcatDataset

from hwnas import distributed
from hwnas.checkpoint import StopSignal, capture_rng, load_checkpoint, restore_rng, save_checkpoint
from hwnas.datasets import endless_from, seeded_loader
from hwnas.errors import UsageError
from hwnas.train.network import auxiliary_state, exportable_state, set_drop_path, training_network
from hwnas.train.recipe import TrainConfig
from hwnas.train.steps import evaluate, train_steps
from lut.table import write_json_atomic
from search_spaces.files import append_jsonl, keep_lines
from profilers import LatencyResult, MeasureConfig, measure
from search_spaces import Architecture, space_for

CHECKPOINT = "checkpoint.pt"
FINAL_LATENCY = MeasureConfig(min_runs=30, budget_s=3.0)
"""The trained network's latency: the standard protocol, a 3 s budget."""


@dataclass(frozen=True)
class TrainResult:
    """Where the files are and the final numbers (accuracy in [0, 1], loss in nats, seconds)."""

    out: Path
    step: int
    total_steps: int
    stopped_by: str | None
    test_loss: float | None
    test_accuracy: float | None
    latency: LatencyResult | None
    seconds: float

    @property
    def complete(self) -> bool:
        return self.stopped_by is None


class _MetricsLog:
    """metrics.jsonl, written by rank 0 only; on resume, lines after the checkpoint's step are dropped."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path, self.enabled = path, enabled

    def keep_until(self, step: int) -> None:
        if self.enabled:  # one JSON Lines home (search_spaces.files): a line torn by a kill goes too
            keep_lines(self.path, lambda _, record: isinstance(record.get("step"), int) and record["step"] <= step,
                       UsageError)

    def append(self, record: dict[str, Any]) -> None:
        if self.enabled:
            append_jsonl(self.path, [record], sync=False, allow_nan=True)  # a diverged loss is data


def _scheduler(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear warm-up from lr/warmup to lr over `warmup` steps, then cosine to 0 at `total` (per step)."""
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total - warmup, 1))
    if warmup <= 0:
        return cosine
    ramp = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0 / warmup, total_iters=warmup)
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [ramp, cosine], milestones=[warmup])


def measure_trained(arch: Architecture, state: dict[str, torch.Tensor], config: TrainConfig,
                    image_shape: tuple[int, int, int]) -> LatencyResult:
    """Latency (ms) of the exported network, as `hwnas export` builds it, on the latency device."""
    network = space_for(arch).build(arch)
    network.load_state_dict(state)
    return measure(network.eval(), backend=config.latency_backend, device=config.latency_device or config.device,
                   input_shape=(config.latency_batch_size, *image_shape), config=FINAL_LATENCY, name="trained")


def train(
    arch: Architecture,
    data: Any,
    config: TrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    info: distributed.DistInfo | None = None,
    on_step: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train `arch` (already fitted to `data`, see `hwnas.train.network.fit_to_data`) on search-train +
    search-val, evaluate on test. `data` is a `hwnas.datasets.bundled.DataSplits` or `hwnas.datasets.FolderSplits`.
    `on_step(step)` runs after every step (tests use it to send a signal)."""
    started = time.perf_counter()
    info = info or distributed.DistInfo(device=config.device)
    device = torch.device(info.device)
    run = Path(out)
    checkpoint_path = run / CHECKPOINT
    if info.is_main:
        run.mkdir(parents=True, exist_ok=True)
    if not resume and checkpoint_path.exists():
        raise UsageError(f"{run} already holds {CHECKPOINT}; pass --resume to continue it or choose another --out")

    torch.manual_seed(config.seed)
    model = training_network(arch, auxiliary=config.auxiliary_weight > 0).to(device).train()
    train_set = ConcatDataset([data.train, data.val])
    workers = getattr(data, "num_workers", 0) if config.num_workers is None else config.num_workers
    loader = seeded_loader(train_set, config.batch_size, seed=config.seed, rank=info.rank,
                           world_size=info.world_size, drop_last=True, num_workers=workers)
    test_loader = seeded_loader(data.test, config.eval_batch_size, shuffle=False, rank=info.rank,
                                world_size=info.world_size, num_workers=workers)
    per_epoch = len(loader)
    if per_epoch == 0:
        raise UsageError(f"--batch-size {config.batch_size} is larger than the training set's share of one process "
                         f"({len(loader.sampler)} images); use a smaller batch")  # type: ignore[arg-type]
    total = config.epochs * per_epoch if config.steps is None else min(config.steps, config.epochs * per_epoch)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                nesterov=config.nesterov and config.momentum > 0, weight_decay=config.weight_decay)
    scheduler = _scheduler(optimizer, round(config.warmup_epochs * per_epoch), total)
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    metrics = _MetricsLog(run / "metrics.jsonl", info.is_main)

    step, seconds_before = 0, 0.0
    if resume:
        state = load_checkpoint(checkpoint_path)
        _check_resumable(state, arch, data, config, info, checkpoint_path)
        model.load_state_dict({**state["state_dict"], **state["auxiliary_state_dict"]})
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, seconds_before = int(state["step"]), float(state["seconds"])
        restore_rng(state["rng"][info.rank])
        metrics.keep_until(step)
        if state["complete"]:
            return TrainResult(run, step, total, None, state.get("test_loss"), state.get("test_accuracy"), None,
                               seconds_before)
    net = distributed.wrap(model, info)

    def save(complete: bool, evaluation: tuple[float, float] | None = None) -> None:
        rng = distributed.gather_objects(capture_rng(), info)
        if info.is_main:
            save_checkpoint(checkpoint_path, {
                "kind": "train", "arch": arch.to_dict(), "state_dict": exportable_state(model),
                "auxiliary_state_dict": auxiliary_state(model), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "step": step, "total_steps": total, "config": config.to_dict(),
                "data_sha256": data.record.indices_sha256, "world_size": info.world_size, "rng": rng,
                "seconds": seconds_before + time.perf_counter() - started, "complete": complete,
                "test_loss": None if evaluation is None else evaluation[0],
                "test_accuracy": None if evaluation is None else evaluation[1],
            })

    evaluation: tuple[float, float] | None = None
    stopped_by: str | None = None
    with StopSignal() as stop:
        set_drop_path(model, config.drop_path_prob * (step // per_epoch) / config.epochs)
        # one pass of the seeded loader per epoch, from where a resumed run stopped
        batches = endless_from(loader, consumed=step)
        for loss, correct in train_steps(net, batches, optimizer, scheduler, criterion, count=total - step, device=device,
                                         grad_clip=config.grad_clip, auxiliary_weight=config.auxiliary_weight):
            step += 1
            epoch = (step - 1) // per_epoch
            if step % config.log_every == 0 or step == total:
                values = torch.stack([loss, correct]).double()  # the only host sync of a step: at log steps
                distributed.all_reduce_mean_([values], info)
                metrics.append({"step": step, "epoch": epoch, "lr": optimizer.param_groups[0]["lr"],
                                "loss": float(values[0]), "acc": float(values[1]),
                                "seconds": seconds_before + time.perf_counter() - started})
            if step % per_epoch == 0 or step == total:
                evaluation = evaluate(model, test_loader, device, info)
                metrics.append({"step": step, "epoch": epoch, "test_loss": evaluation[0], "test_acc": evaluation[1],
                                "seconds": seconds_before + time.perf_counter() - started})
            if on_step is not None:
                on_step(step)
            if step == total:
                break  # a stop request now changes nothing: the run completes below
            if distributed.any_rank(stop.requested, info):
                stopped_by = stop.name or "a signal on another rank"
                save(False)
                break
            if step % config.checkpoint_every == 0:
                save(False)
            if step % per_epoch == 0:  # the next epoch's drop-path probability
                set_drop_path(model, config.drop_path_prob * (step // per_epoch) / config.epochs)
    if stopped_by is not None:
        return TrainResult(run, step, total, stopped_by, None, None, None, seconds_before + time.perf_counter() - started)
    save(True, evaluation)
    latency = None
    if info.is_main and config.measure_latency:
        latency = measure_trained(arch, exportable_state(model), config, tuple(data.image_shape))
    result = TrainResult(run, step, total, None, evaluation[0] if evaluation else None,
                         evaluation[1] if evaluation else None, latency, seconds_before + time.perf_counter() - started)
    if info.is_main:
        arch.save(run / "arch.json")
        write_json_atomic(run / "summary.json", {
            "steps": step, "epochs": step / per_epoch, "test_loss": result.test_loss,
            "test_accuracy": result.test_accuracy, "latency_ms": None if latency is None else latency.value_ms,
            "latency": None if latency is None else latency.to_dict(), "seconds": result.seconds,
            "config": config.to_dict(), "data": data.record.to_dict(), "world_size": info.world_size,
            "checkpoint": str(checkpoint_path), "arch": str(run / "arch.json"),
        })
    return result


def _check_resumable(state: dict[str, Any], arch: Architecture, data: Any, config: TrainConfig,
                     info: distributed.DistInfo, path: Path) -> None:
    """Refuse a checkpoint of another architecture, data split, recipe or world size (one line)."""
    if state.get("kind") != "train":
        raise UsageError(f"{path} is not a training checkpoint")
    if state["arch"]["choices"] != arch.choices or state["arch"]["config"] != arch.config:
        raise UsageError(f"{path} was written for another architecture; resume with the same ARCH and --space-option")
    if state["data_sha256"] != data.record.indices_sha256:
        raise UsageError(f"{path} was written for another data split; resume with the same --data and --seed")
    difference = config.differs_from(state["config"])
    if difference:
        raise UsageError(f"cannot resume {path}: {difference}")
    if int(state["world_size"]) != info.world_size:
        raise UsageError(f"{path} was written by {state['world_size']} processes; resume with the same number")
