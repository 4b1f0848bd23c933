"""Short training and evaluation of a standalone network on the bundled splits.

The default run trains the found network for a few hundred steps so the
exported file is a working classifier; the search-vs-random benchmark gives
every architecture exactly the same budget. After the search, the network
may be trained on search-train + search-val (both were used by the search);
the test split is only ever evaluated.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader

from hwnas.datasets.bundled import DataSplits, endless
from hwnas.objectives import cross_entropy
from profilers import torch_threads


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


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device) -> tuple[float, float]:
    """(mean cross-entropy, top-1 accuracy) over a whole split."""
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        logits = model(images)
        total_loss += float(cross_entropy(logits, labels)) * len(labels)
        correct += int((logits.argmax(1) == labels).sum())
        count += len(labels)
    return total_loss / max(count, 1), correct / max(count, 1)


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
    """SGD (momentum 0.9, cosine to 0) for `steps` batches, then the test-split evaluation."""
    with torch_threads(threads):
        return _train(model, data, steps, batch_size, lr, weight_decay, seed, device, include_val)


def _train(model: nn.Module, data: DataSplits, steps: int, batch_size: int, lr: float, weight_decay: float, seed: int,
           device: str, include_val: bool) -> TrainReport:
    started = time.perf_counter()
    torch.manual_seed(seed)
    where = torch.device(device)
    model.to(where).train()
    dataset = ConcatDataset([data.train, data.val]) if include_val else data.train
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    batches = endless(loader)
    running = float("nan")
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / max(steps, 1)))
        images, labels = next(batches)
        optimizer.zero_grad(set_to_none=True)
        loss = cross_entropy(model(images.to(where)), labels.to(where))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        running = float(loss.detach()) if math.isnan(running) else 0.9 * running + 0.1 * float(loss.detach())
    test_loss, test_accuracy = evaluate(model, data.loader("test", 256, shuffle=False), where)
    return TrainReport(steps, running, test_loss, test_accuracy, time.perf_counter() - started)
