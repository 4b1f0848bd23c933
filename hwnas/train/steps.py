"""The one training loop of hwnas, and the one evaluation.

Two trainings run the loop, each with a recipe of its own:

- retraining a found network (`hwnas.train.loop.train`): epochs of a seeded
  loader, linear warm-up then cosine, label smoothing, the auxiliary head,
  drop-path by epoch, checkpoints and exact resume, DDP;
- the short search-time training (`hwnas.search.train.train_network`): a
  fixed number of steps over a shuffled loader, cosine to 0 in closed form,
  plain cross-entropy, no files.

`train_steps` is the loop: per step one batch, forward, loss (plus the
weighted auxiliary loss where the network returns one), backward,
gradient-norm clipping, the optimiser's step, the schedule's step. It yields
each step's loss and batch accuracy as tensors, so the caller decides when to
pay for a host sync (retraining reads them only at log steps) and what
happens between steps (evaluation, checkpoints, a stop request, the next
epoch's drop-path). `evaluate` is (mean cross-entropy, top-1 accuracy) over a
loader, summed in float64 and over ranks under torchrun.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from hwnas import distributed

Loss = Callable[[Tensor, Tensor], Tensor]
"""(logits, labels) -> mean loss of the batch."""


def train_steps(net: nn.Module, batches: Iterator[tuple[Tensor, Tensor]], optimizer: torch.optim.Optimizer,
                schedule: torch.optim.lr_scheduler.LRScheduler, loss: Loss, *, count: int, device: torch.device,
                grad_clip: float, auxiliary_weight: float = 0.0) -> Iterator[tuple[Tensor, Tensor]]:
    """`count` SGD steps on the next `count` batches; after each, (loss, batch accuracy) as detached
    0-d tensors (no host sync). The learning rate of a step is the one `schedule` set before it."""
    for _ in range(count):
        images, labels = next(batches)
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        output = net(images)
        logits, auxiliary = output if isinstance(output, tuple) else (output, None)
        value = loss(logits, labels)
        if auxiliary is not None:
            value = value + auxiliary_weight * loss(auxiliary, labels)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
        optimizer.step()
        schedule.step()
        yield value.detach(), (logits.argmax(1) == labels).float().mean().detach()


@torch.no_grad()
def evaluate(model: nn.Module, loader: torch.utils.data.DataLoader, device: torch.device,
             info: distributed.DistInfo | None = None) -> tuple[float, float]:
    """(mean cross-entropy in nats, top-1 accuracy) over the loader, summed over ranks; the model's
    training mode is restored after."""
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64)
    for images, labels in loader:
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        logits = model(images)
        sums += torch.tensor([float(nn.functional.cross_entropy(logits, labels, reduction="sum")),
                              float((logits.argmax(1) == labels).sum()), len(labels)], dtype=torch.float64)
    model.train(was_training)
    if info is not None:
        distributed.all_reduce_mean_([sums], info)
    return float(sums[0] / sums[2].clamp_min(1)), float(sums[1] / sums[2].clamp_min(1))
