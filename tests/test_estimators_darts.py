"""DARTS-family architecture gradients checked against independent computations
on a tiny float64 mixed-operation network (smooth ops, so finite differences hold)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hwnas.estimators.darts import amended, amended_mixed_term, darts_gradient, first_order, second_order


class TinyMixed(nn.Module):
    """Two edges, each a softmax(alpha)-weighted sum of three smooth ops, then a classifier."""

    def __init__(self, width: int = 4, classes: int = 3) -> None:
        super().__init__()
        self.edges = nn.ModuleList(
            nn.ModuleList([nn.Linear(width, width), nn.Linear(width, width), nn.Linear(width, width)]) for _ in range(2)
        )
        self.head = nn.Linear(width, classes)
        self.activations = (torch.tanh, nn.functional.softplus, torch.sin)

    def forward(self, x: torch.Tensor, alphas: list[torch.Tensor]) -> torch.Tensor:
        for ops, alpha in zip(self.edges, alphas, strict=True):
            mix = torch.softmax(alpha, dim=0)
            x = sum(m * act(op(x)) for m, act, op in zip(mix, self.activations, ops, strict=True))
        return self.head(x)


@dataclass
class Problem:
    net: TinyMixed
    weights: list[torch.Tensor]
    alphas: list[torch.Tensor]
    batches: dict[str, tuple[torch.Tensor, torch.Tensor]]

    def loss(self, split: str, weights: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Cross-entropy on one batch, optionally with other weight tensors (functional call)."""
        x, y = self.batches[split]
        if weights is None:
            return nn.functional.cross_entropy(self.net(x, self.alphas), y)
        names = [name for name, _ in self.net.named_parameters()]
        logits = torch.func.functional_call(self.net, dict(zip(names, weights, strict=True)), (x, self.alphas))
        return nn.functional.cross_entropy(logits, y)

    def train_loss(self) -> torch.Tensor:
        return self.loss("train")

    def val_loss(self) -> torch.Tensor:
        return self.loss("val")


def _problem(seed: int = 0) -> Problem:
    torch.manual_seed(seed)
    net = TinyMixed().double()
    alphas = [(0.5 * torch.randn(3, dtype=torch.float64)).requires_grad_() for _ in range(2)]
    batches = {split: (torch.randn(16, 4, dtype=torch.float64), torch.randint(0, 3, (16,))) for split in ("train", "val")}
    return Problem(net, list(net.parameters()), alphas, batches)


def _flat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _relative_error(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    return float((estimate - reference).norm() / reference.norm())


@torch.no_grad()
def _shift(tensors: list[torch.Tensor], directions: list[torch.Tensor], scale: float) -> None:
    for tensor, direction in zip(tensors, directions, strict=True):
        tensor.add_(direction, alpha=scale)


def _grad_w(loss_fn, weights: list[torch.Tensor]) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss_fn(), weights))


def test_amended_term_matches_finite_differences() -> None:
    p = _problem()
    weights, alphas = p.weights, p.alphas
    v = list(torch.autograd.grad(p.val_loss(), weights))
    analytic = _flat(amended_mixed_term(p.train_loss, weights, alphas, v))

    h = 1e-5
    _shift(weights, v, h)
    plus = _grad_w(p.train_loss, weights)
    _shift(weights, v, -2 * h)
    minus = _grad_w(p.train_loss, weights)
    _shift(weights, v, h)
    u = [(a - b) / (2 * h) for a, b in zip(plus, minus, strict=True)]  # H v by central differences

    numeric = []
    for alpha in alphas:
        for index in range(alpha.numel()):
            values = []
            for sign in (1.0, -1.0):
                with torch.no_grad():
                    alpha.view(-1)[index] += sign * h
                values.append(float(sum((g * ui).sum() for g, ui in zip(_grad_w(p.train_loss, weights), u, strict=True))))
                with torch.no_grad():
                    alpha.view(-1)[index] -= sign * h
            numeric.append((values[0] - values[1]) / (2 * h))
    assert _relative_error(analytic, torch.tensor(numeric, dtype=torch.float64)) < 1e-3


def test_amended_gradient_matches_dense_hessians() -> None:
    p = _problem(seed=1)
    sizes_w, sizes_a = [w.numel() for w in p.weights], [a.numel() for a in p.alphas]
    n_w = sum(sizes_w)

    def joint_loss(joint: torch.Tensor, split: str) -> torch.Tensor:
        weights = [c.view_as(w) for c, w in zip(joint[:n_w].split(sizes_w), p.weights, strict=True)]
        alphas = [c.view_as(a) for c, a in zip(joint[n_w:].split(sizes_a), p.alphas, strict=True)]
        x, y = p.batches[split]
        names = [name for name, _ in p.net.named_parameters()]
        logits = torch.func.functional_call(p.net, dict(zip(names, weights, strict=True)), (x, alphas))
        return nn.functional.cross_entropy(logits, y)

    joint0 = torch.cat([_flat([w.detach() for w in p.weights]), _flat([a.detach() for a in p.alphas])])
    hessian = torch.autograd.functional.hessian(lambda j: joint_loss(j, "train"), joint0)
    h_ww, h_aw = hessian[:n_w, :n_w], hessian[n_w:, :n_w]
    grad_val = torch.autograd.functional.jacobian(lambda j: joint_loss(j, "val"), joint0)
    expected = grad_val[n_w:] - 0.1 * h_aw @ (h_ww @ grad_val[:n_w])

    result = amended(p.train_loss, p.val_loss, p.weights, p.alphas, eta=0.1)
    assert _relative_error(_flat(result.total), expected) < 1e-8
    assert _relative_error(_flat(result.first_order), grad_val[n_w:]) < 1e-10


def test_second_order_matches_the_exact_unrolled_gradient_and_restores_weights() -> None:
    p = _problem(seed=2)
    xi = 0.05
    before = [w.detach().clone() for w in p.weights]
    grads = torch.autograd.grad(p.train_loss(), p.weights, create_graph=True)
    unrolled = [w - xi * g for w, g in zip(p.weights, grads, strict=True)]
    exact = _flat(list(torch.autograd.grad(p.loss("val", unrolled), p.alphas)))

    estimate = second_order(p.train_loss, p.val_loss, p.weights, p.alphas, xi=xi)
    assert _relative_error(_flat(estimate.total), exact) < 1e-3
    assert _relative_error(_flat(estimate.total), _flat(estimate.first_order)) > 1e-3  # the correction matters
    for w, b in zip(p.weights, before, strict=True):
        assert torch.allclose(w, b, atol=1e-12)


def test_first_order_is_plain_autograd_and_dispatch_works() -> None:
    p = _problem(seed=3)
    expected = _flat(list(torch.autograd.grad(p.val_loss(), p.alphas)))
    assert torch.allclose(_flat(first_order(p.val_loss, p.weights, p.alphas).total), expected)
    for order in ("first", "second", "amended"):
        result = darts_gradient(order, p.train_loss, p.val_loss, p.weights, p.alphas)
        assert all(t.shape == a.shape for t, a in zip(result.total, p.alphas, strict=True))
    amended_zero = darts_gradient("amended", p.train_loss, p.val_loss, p.weights, p.alphas, eta=0.0)
    assert torch.allclose(_flat(amended_zero.total), expected)
