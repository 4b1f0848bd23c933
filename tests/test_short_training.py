"""The short search-time training (`hwnas.search.train.train_network`) is a recipe of the one training
loop (`hwnas.train.steps`), and gives what it gave as a loop of its own: checked here against that
loop, written out plainly (shuffled batches, SGD Nesterov 0.9, cosine to 0 per step in closed form,
cross-entropy, clip 5; evaluation by mean cross-entropy per batch)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader

from hwnas.datasets import load_data
from hwnas.search.train import train_network
from search_spaces import get_space

TINY = {"widths": [8, 8, 8, 8, 8, 8, 8, 8, 16], "depths": [1, 1, 1, 1, 1, 1], "small_input": True, "in_channels": 1,
        "resolution": 8, "num_classes": 10, "dropout": 0.2}


def _reference(model: nn.Module, data, steps: int, batch_size: int, lr: float, weight_decay: float, seed: int,
               include_val: bool) -> tuple[float, float, float]:
    """(EMA of the train loss, test loss, test accuracy) of the short training as its own loop."""
    torch.manual_seed(seed)
    model.train()
    dataset = ConcatDataset([data.train, data.val]) if include_val else data.train
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)

    def forever():
        while True:
            yield from loader

    batches, running = forever(), float("nan")
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / max(steps, 1)))
        images, labels = next(batches)
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        running = float(loss.detach()) if math.isnan(running) else 0.9 * running + 0.1 * float(loss.detach())
    model.eval()
    total, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for images, labels in data.loader("test", 256, shuffle=False):
            logits = model(images)
            total += float(nn.functional.cross_entropy(logits, labels)) * len(labels)
            correct += int((logits.argmax(1) == labels).sum())
            count += len(labels)
    return running, total / count, correct / count


@pytest.mark.parametrize(("seed", "include_val", "steps"), [(0, True, 25), (3, False, 13)])
def test_fixed_seed_short_training_gives_the_plain_loops_numbers(seed: int, include_val: bool, steps: int) -> None:
    torch.set_num_threads(1)
    data = load_data("digits", limit=240)
    space = get_space("proxyless", **TINY)
    arch = space.sample(np.random.default_rng(5))
    torch.manual_seed(99)
    ours, theirs = space.build(arch), space.build(arch)
    theirs.load_state_dict(ours.state_dict())
    report = train_network(ours, data, steps=steps, batch_size=16, lr=0.05, seed=seed, include_val=include_val)
    running, test_loss, test_accuracy = _reference(theirs, data, steps, 16, 0.05, 3e-4, seed, include_val)
    assert report.steps == steps and not ours.training  # left in eval mode, ready to export
    assert report.test_accuracy == test_accuracy
    assert report.train_loss == running
    reference = theirs.state_dict()
    assert all(torch.equal(value, reference[name]) for name, value in ours.state_dict().items())
    # one evaluation now sums cross-entropy in float64; the plain loop summed float32 batch means
    assert report.test_loss == pytest.approx(test_loss, rel=1e-6)
    assert 0.0 <= test_accuracy <= 1.0 and math.isfinite(running)
