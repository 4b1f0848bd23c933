"""The short training of a found network on the bundled splits: a recipe of the one loop.

The default run trains the found network for a few hundred steps so the
exported file is a working classifier; the search-vs-random benchmark gives
every architecture exactly the same budget. After the search, the network
may be trained on search-train + search-val (both were used by the search);
the test split is only ever evaluated.

The recipe: `steps` batches of a loader shuffled with `seed` (the last,
smaller batch of a pass included), SGD with Nesterov momentum 0.9, the
learning rate on a cosine from `lr` to 0 per step in closed form, no
warm-up, plain cross-entropy, gradient norm clipped at 5, one thread; run by
`hwnas.train.steps.train_steps`, evaluated by its `evaluate`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from hwnas.datasets.bundled import DataSplits, endless
from hwnas.objectives import cross_entropy
from hwnas.train.steps import evaluate, train_steps
from profilers import torch_threads

GRAD_CLIP = 5.0


@dataclass(frozen=True)
class TrainReport:
    """Losses in nats, accuracies in [0, 1], time in seconds."""

    steps: int
    train_loss: float
    test_loss: float
    test_accuracy: float
    seconds: float

    def to_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


def train_network(
    model: nn.Module,
    data: DataSplits,
    *,
    steps: int = 300,
    batch_size: int = 64,
    lr: float = 0.05,
    weight_decay: float = 3e-4,
    seed: int = 0,
    device: str = "cpu",
    include_val: bool = True,
    threads: int | None = 1,
) -> TrainReport:
    """Train `model` in place for `steps` batches, then evaluate it on the test split; it is left
    in eval mode. `train_loss` is the exponential moving average (0.9) of the step losses."""
    with torch_threads(threads):
        started = time.perf_counter()
        where = torch.device(device)
        dataset = ConcatDataset([data.train, data.val]) if include_val else data.train
        running = fit(model, dataset, steps=steps, batch_size=batch_size, lr=lr, weight_decay=weight_decay, seed=seed,
                      device=where)
        test_loss, test_accuracy = evaluate(model, data.loader("test", 256, shuffle=False), where)
        model.eval()
        return TrainReport(steps, running, test_loss, test_accuracy, time.perf_counter() - started)


def fit(model: nn.Module, dataset: Dataset, *, steps: int, batch_size: int, lr: float, weight_decay: float = 3e-4,
        seed: int = 0, device: torch.device | str = "cpu") -> float:
    """The recipe's training part on `dataset` (also a fine-tune from inherited weights, `hwnas.search.inherit`);
    returns the moving average of the step losses. The caller sets the threads."""
    torch.manual_seed(seed)
    model.to(device).train()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    cosine = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / max(steps, 1))))
    running = float("nan")
    for loss, _ in train_steps(model, endless(loader), optimizer, cosine, cross_entropy, count=steps, device=device,
                               grad_clip=GRAD_CLIP):
        running = float(loss) if math.isnan(running) else 0.9 * running + 0.1 * float(loss)
    return running
