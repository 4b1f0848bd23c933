"""Architecture gradients of the DARTS family on the softmax relaxation.

With w the supernet weights and alpha the architecture logits, DARTS wants
dL_val(w*(alpha), alpha)/dalpha. Three estimates of it live here:

- **first order** (DARTS, eta = 0): g1 = dL_val/dalpha at the current w.
- **second order** (DARTS Eq. 7-8): unroll one SGD step w' = w - xi dL_train/dw,
  take dL_val(w', alpha)/dalpha and subtract
  xi * (d2 L_train/dalpha dw) . dL_val/dw', the mixed product estimated by the
  central difference [dL_train(w+)/dalpha - dL_train(w-)/dalpha] / (2 eps) with
  w+- = w +- eps v', eps = 0.01 / ||v'||.
- **amended** (Bi et al., Eq. 7): g = g1 - eta (d2 L_train/dalpha dw) H dL_val/dw,
  H = d2 L_train/dw2, all at the current w, eta = 0.1. Computed exactly with
  two Hessian-vector products by double backward: v = dL_val/dw,
  u = H v = d<dL_train/dw, v>/dw, then the mixed term is d<dL_train/dw, u>/dalpha
  with u held constant. No matrix is ever formed.

A loss is passed as a closure that evaluates it at the *current* values of the
given tensors (so second order can move w in place and put it back). Tensors
a loss does not depend on get a zero gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

LossFn = Callable[[], torch.Tensor]
DARTS_ORDERS = ("first", "second", "amended")


@dataclass(frozen=True)
class ArchGradient:
    """The architecture gradient and its parts (one tensor per alpha tensor).

    `first_order` is dL_val/dalpha at the evaluation point; `correction` is
    what the method adds to it (zero for first order), so that
    total = first_order + correction.
    """

    total: list[torch.Tensor]
    first_order: list[torch.Tensor]
    correction: list[torch.Tensor]
    val_loss: float


def _grad(output: torch.Tensor, inputs: Sequence[torch.Tensor], **kwargs: bool) -> list[torch.Tensor]:
    grads = torch.autograd.grad(output, list(inputs), allow_unused=True, **kwargs)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads, strict=True)]


def _dot(left: Sequence[torch.Tensor], right: Sequence[torch.Tensor]) -> torch.Tensor:
    return sum((a * b).sum() for a, b in zip(left, right, strict=True))  # type: ignore[return-value]


def first_order(val_loss: LossFn, weights: Sequence[torch.Tensor], alphas: Sequence[torch.Tensor]) -> ArchGradient:
    """DARTS first order: dL_val/dalpha at the current weights."""
    del weights  # kept for a uniform signature
    loss = val_loss()
    g1 = _grad(loss, alphas)
    return ArchGradient(g1, g1, [torch.zeros_like(g) for g in g1], float(loss.detach()))


def amended_mixed_term(
    train_loss: LossFn,
    weights: Sequence[torch.Tensor],
    alphas: Sequence[torch.Tensor],
    v: Sequence[torch.Tensor],
) -> list[torch.Tensor]:
    """(d2 L_train / dalpha dw) . H . v with H = d2 L_train/dw2, by double backward.

    One forward and three backward passes: dL_train/dw with its graph kept,
    u = H v, then d<dL_train/dw, u>/dalpha.
    """
    loss = train_loss()
    grad_w = _grad(loss, weights, create_graph=True)
    hv = _grad(_dot(grad_w, v), weights, retain_graph=True)
    return _grad(_dot(grad_w, [u.detach() for u in hv]), alphas)


def amended(
    train_loss: LossFn,
    val_loss: LossFn,
    weights: Sequence[torch.Tensor],
    alphas: Sequence[torch.Tensor],
    eta: float = 0.1,
) -> ArchGradient:
    """Amended-DARTS architecture gradient g1 + g2' (Bi et al. Eq. 7), eta 0.1 by default."""
    loss = val_loss()
    grads = _grad(loss, [*alphas, *weights])
    g1, v = grads[: len(alphas)], grads[len(alphas) :]
    mixed = amended_mixed_term(train_loss, weights, alphas, v)
    correction = [-eta * m for m in mixed]
    return ArchGradient([a + b for a, b in zip(g1, correction, strict=True)], g1, correction, float(loss.detach()))


@torch.no_grad()
def _axpy(tensors: Sequence[torch.Tensor], scale: float, directions: Sequence[torch.Tensor]) -> None:
    for tensor, direction in zip(tensors, directions, strict=True):
        tensor.add_(direction, alpha=scale)


def second_order(
    train_loss: LossFn,
    val_loss: LossFn,
    weights: Sequence[torch.Tensor],
    alphas: Sequence[torch.Tensor],
    xi: float,
    epsilon_scale: float = 0.01,
) -> ArchGradient:
    """DARTS second order: one unrolled SGD step of size `xi` and the
    finite-difference Hessian-vector product of the DARTS paper.

    The weights are moved in place and restored before returning (up to
    floating-point rounding of the add / subtract).
    """
    step = _grad(train_loss(), weights)
    _axpy(weights, -xi, step)  # w' = w - xi dL_train/dw
    try:
        loss = val_loss()
        grads = _grad(loss, [*alphas, *weights])
        g1, v = grads[: len(alphas)], grads[len(alphas) :]
    finally:
        _axpy(weights, xi, step)  # back to w
    norm = float(torch.sqrt(sum((x * x).sum() for x in v)))  # type: ignore[arg-type]
    if norm == 0.0:
        return ArchGradient(g1, g1, [torch.zeros_like(g) for g in g1], float(loss.detach()))
    eps = epsilon_scale / norm
    _axpy(weights, eps, v)
    try:
        plus = _grad(train_loss(), alphas)
        _axpy(weights, -2.0 * eps, v)
        minus = _grad(train_loss(), alphas)
    finally:
        _axpy(weights, eps, v)
    correction = [-xi * (p - m) / (2.0 * eps) for p, m in zip(plus, minus, strict=True)]
    return ArchGradient([a + b for a, b in zip(g1, correction, strict=True)], g1, correction, float(loss.detach()))


def darts_gradient(
    order: str,
    train_loss: LossFn,
    val_loss: LossFn,
    weights: Sequence[torch.Tensor],
    alphas: Sequence[torch.Tensor],
    *,
    eta: float = 0.1,
    xi: float = 0.025,
) -> ArchGradient:
    """Dispatch on `order` in DARTS_ORDERS (`xi`: unrolled step, `eta`: amending coefficient)."""
    if order == "first":
        return first_order(val_loss, weights, alphas)
    if order == "second":
        return second_order(train_loss, val_loss, weights, alphas, xi)
    if order == "amended":
        return amended(train_loss, val_loss, weights, alphas, eta)
    raise ValueError(f"unknown DARTS order {order!r}; choose one of {', '.join(DARTS_ORDERS)}")
