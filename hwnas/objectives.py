"""Search objectives (UNAS Sec. 3.2): the accuracy term and the latency term.

The architecture distribution is trained on one of

- ``val``:  L_val, the cross-entropy on a search-val batch (DARTS, GDAS);
- ``gen``:  L_gen = L_train + lambda |L_val - L_train| (UNAS Eq. 8, lambda 0.5),
  which penalises architectures whose validation loss drifts from their
  training loss, i.e. that overfit the shared weights;
- ``train``: L_train (SNAS).

plus a latency term lambda_lat * h(L_lat) where L_lat is a latency in
milliseconds and h expresses the user's target T (ms):

- ``hinge``: relu(L/T - 1)  -- zero under the target (UNAS code: a hinge);
- ``power``: (L/T)^beta     -- ProxylessNAS / MnasNet style, always pulls down;
- ``abs``:   |L/T - 1|      -- two-sided, for "as close to T as possible".

Every function accepts floats or tensors and returns the same kind, so one
definition serves the measured latency (a float, non-differentiable) and the
relaxed surrogate latency g(zeta) (a tensor with a gradient) alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import torch

from hwnas.errors import UsageError

Value = TypeVar("Value", float, torch.Tensor)

ACCURACY_OBJECTIVES = ("val", "gen", "train")
LATENCY_PENALTIES = ("hinge", "power", "abs")


def generalization_loss(train_loss: Value, val_loss: Value, lam: float = 0.5) -> Value:
    """UNAS Eq. 8: L_train + lam * |L_val - L_train| (per architecture sample)."""
    gap = val_loss - train_loss
    return train_loss + lam * (gap.abs() if isinstance(gap, torch.Tensor) else abs(gap))


def accuracy_objective(kind: str, train_loss: Value | None, val_loss: Value | None, lam: float = 0.5) -> Value:
    """The accuracy term named by `kind`; the loss it does not need may be None."""
    if kind == "val":
        if val_loss is None:
            raise ValueError("objective 'val' needs the validation loss")
        return val_loss
    if kind == "train":
        if train_loss is None:
            raise ValueError("objective 'train' needs the training loss")
        return train_loss
    if kind == "gen":
        if train_loss is None or val_loss is None:
            raise ValueError("objective 'gen' needs both losses")
        return generalization_loss(train_loss, val_loss, lam)
    raise UsageError(f"unknown objective {kind!r}; choose one of {', '.join(ACCURACY_OBJECTIVES)}")


def needs_train_loss(kind: str) -> bool:
    """Whether the architecture step must also evaluate the loss on a search-train batch."""
    return kind in ("gen", "train")


@dataclass(frozen=True)
class LatencyPenalty:
    """lambda_lat * h(L / target) for a latency L in ms; see the module docstring.

    `weight` is lambda_lat (dimensionless, added to a cross-entropy in nats);
    `beta` is used by ``power`` only.
    """

    target_ms: float
    kind: str = "hinge"
    weight: float = 1.0
    beta: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in LATENCY_PENALTIES:
            raise UsageError(f"unknown latency penalty {self.kind!r}; choose one of {', '.join(LATENCY_PENALTIES)}")
        if not self.target_ms > 0:
            raise UsageError(f"latency target must be positive, got {self.target_ms} ms")
        if self.weight < 0:
            raise UsageError(f"latency weight must be >= 0, got {self.weight}")

    def __call__(self, latency_ms: Value) -> Value:
        ratio = latency_ms / self.target_ms
        if self.kind == "hinge":
            shaped = torch.relu(ratio - 1.0) if isinstance(ratio, torch.Tensor) else max(ratio - 1.0, 0.0)
        elif self.kind == "power":
            shaped = ratio**self.beta
        else:
            shaped = (ratio - 1.0).abs() if isinstance(ratio, torch.Tensor) else abs(ratio - 1.0)
        return self.weight * shaped

    def satisfied(self, latency_ms: float, tolerance: float = 0.15) -> bool:
        """The acceptance test of a final network: within +-tolerance of the
        target, or anywhere below it for the hinge (which never pushes up)."""
        if self.kind == "hinge":
            return latency_ms <= self.target_ms * (1.0 + tolerance)
        return abs(latency_ms / self.target_ms - 1.0) <= tolerance


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy in nats: the L_train / L_val of every estimator."""
    return torch.nn.functional.cross_entropy(logits, labels)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in [0, 1] of one batch."""
    return float((logits.argmax(dim=1) == labels).float().mean())
