"""How a found network is retrained from scratch: `TrainConfig` and the standard recipes.

Recipes (per-process batch size; the learning rate is the paper's for its
total batch — scale it yourself with more processes):

- cifar10 (DARTS Sec. 3.3, its train.py): 600 epochs, batch 96, lr 0.025,
  weight decay 3e-4, cutout 16, no label smoothing; DARTS networks add the
  auxiliary head (weight 0.4) and drop-path 0.2 (ramped linearly by epoch).
- imagefolder / ImageNet (DARTS train_imagenet.py, ProxylessNAS): batch 128,
  lr 0.1, label smoothing 0.1, 5 warm-up epochs; MBConv networks 300 epochs
  with weight decay 4e-5, DARTS networks 250 epochs with 3e-5 and the
  auxiliary head (0.4).
- bundled (mnist, digits): 10 epochs, batch 64, lr 0.05, weight decay 3e-4,
  label smoothing 0.1, 1 warm-up epoch: minutes on a CPU.

All use SGD with Nesterov momentum 0.9, a linear warm-up to lr and a
cosine decay to 0 per step, and gradient-norm clipping at 5.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from hwnas.errors import UsageError

RECIPES: dict[str, dict[str, Any]] = {
    "cifar10": {"epochs": 600, "batch_size": 96, "lr": 0.025, "weight_decay": 3e-4, "warmup_epochs": 0.0,
                "label_smoothing": 0.0, "cutout": 16},
    "imagefolder": {"epochs": 300, "batch_size": 128, "lr": 0.1, "weight_decay": 4e-5, "warmup_epochs": 5.0,
                    "label_smoothing": 0.1},
    "bundled": {"epochs": 10, "batch_size": 64, "lr": 0.05, "weight_decay": 3e-4, "warmup_epochs": 1.0,
                "label_smoothing": 0.1},
}
DARTS_ADDITIONS: dict[str, dict[str, Any]] = {
    "cifar10": {"auxiliary_weight": 0.4, "drop_path_prob": 0.2},
    "imagefolder": {"auxiliary_weight": 0.4, "epochs": 250, "weight_decay": 3e-5},
    "bundled": {},
}
RESUME_MAY_CHANGE = ("device", "num_workers", "checkpoint_every", "latency_device", "latency_backend",
                     "latency_batch_size", "measure_latency")
"""Settings that do not change the trajectory, so `--resume` may differ in them."""


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of one retraining run (lr per step after warm-up; epochs over search-train + search-val).

    `steps` caps the total number of optimisation steps (quick runs, tests);
    `checkpoint_every` and `log_every` count steps.
    """

    epochs: int = 10
    steps: int | None = None
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 3e-4
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.1
    auxiliary_weight: float = 0.0
    drop_path_prob: float = 0.0
    cutout: int = 0
    color_jitter: float = 0.0
    grad_clip: float = 5.0
    seed: int = 0
    device: str = "cpu"
    num_workers: int | None = None
    eval_batch_size: int = 256
    checkpoint_every: int = 500
    log_every: int = 20
    measure_latency: bool = True
    latency_device: str | None = None
    latency_backend: str = "eager"
    latency_batch_size: int = 1

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or (self.steps is not None and self.steps < 1):
            raise UsageError("--epochs, --batch-size and --steps must be >= 1")
        if self.lr <= 0 or self.weight_decay < 0 or not 0 <= self.label_smoothing < 1:
            raise UsageError("--lr must be > 0, --weight-decay >= 0 and --label-smoothing in [0, 1)")
        if not 0 <= self.drop_path_prob < 1 or self.auxiliary_weight < 0 or self.warmup_epochs < 0:
            raise UsageError("--drop-path must be in [0, 1), --auxiliary-weight and --warmup-epochs >= 0")
        if self.checkpoint_every < 1 or self.log_every < 1:
            raise UsageError("--checkpoint-every and --log-every must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        return replace(self, **changes)

    def differs_from(self, saved: dict[str, Any]) -> str | None:
        """The first trajectory-relevant setting that differs from a saved config (for --resume)."""
        for f in fields(self):
            if f.name not in RESUME_MAY_CHANGE and saved.get(f.name) != getattr(self, f.name):
                return f"{f.name} is {getattr(self, f.name)!r} now but {saved.get(f.name)!r} in the checkpoint"
        return None


def recipe(space: str, kind: str, **overrides: Any) -> TrainConfig:
    """The standard recipe for a space ("darts" adds its extras) on a data kind; `overrides` win (None = default)."""
    settings = dict(RECIPES[kind])
    if space == "darts":
        settings.update(DARTS_ADDITIONS[kind])
    settings.update({key: value for key, value in overrides.items() if value is not None})
    return TrainConfig(**settings)
