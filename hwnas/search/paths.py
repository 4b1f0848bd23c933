"""Which paths the supernet's weights are trained on in each weight step (the supernet-training rule).

- `sample`: the weights the estimator itself trains at (GDAS Alg. 1, UNAS): a hard
  sample b ~ p for gdas / reinforce / rebar, the softmax for darts, a relaxed
  sample for snas, the multi-hot ensemble for egs. While p is uniform (warm-up)
  this is the uniform single path of SPOS. The papers' setting.
- `uniform`: one path drawn uniformly per decision every step, whatever p is
  (SPOS, Guo et al. 2020): the supernet keeps training every candidate.
- `depth`: `uniform`, except that a decision that may skip its block (a `zero` choice) skips it with
  probability 1/2 and otherwise runs one of its blocks uniformly: each stage's depth is drawn uniformly,
  as Once-for-All trains elastic depth (Cai et al. 2020). Under `uniform` a block is skipped on 1 path in
  7, and the supernet rates skipping 0.5-3 points worse than training does (BENCHMARKS.md, "What skipping
  a layer is worth"). In spaces without `zero` it draws what `uniform` draws, from its own stream.
- `network`: one uniform draw among the networks a search can return (`SearchSpace.sample_network`): in
  the DARTS edge space a genotype (per node two input edges with one non-`none` op each, every other edge
  `none`), so the supernet trains the networks that `derive` returns and inherited-weight accuracy rates;
  in every other space the same draw as `uniform` (from its own stream).
- `network-multi`: `network`, and on every decision whose drawn choice computes something (not `none`
  / `zero`) each other such choice joins it with probability 1/2, the joined outputs averaged (weight
  1/k each). The candidates of a kept edge are then trained together on the same input, as in the
  all-ops supernet of DARTS and the path dropout of Bender et al. (2018, "Understanding and Simplifying
  One-Shot Architecture Search"), while the edge structure stays a derivable network's. Measured
  against `network` because single-path cell supernets learn slowly from a fresh path each step
  (docs/benchmark-log.md, "The DARTS cell supernet on the cluttered task"); costs about 1 + (k - 1) / 2
  candidate evaluations per kept edge instead of one.
- `fair`: FairNAS strict fairness (Chu et al. 2021): steps are grouped by the
  largest number of choices K of any decision; within a group every decision
  runs each of its choices exactly once (a fresh permutation per group; a
  decision with fewer choices fills its remaining steps uniformly). One path per
  step, so no extra cost; FairNAS proper accumulates the K paths of a group into
  one update, here each path updates at once.
- `sandwich`: BigNAS's sandwich rule with in-place distillation (Yu et al.
  2020): each step trains the largest path on the labels and the smallest path
  plus one uniform path on the largest path's predictions (KL to its softmax,
  detached), accumulating the gradients of the three into one update (3x cost).

The uniform, depth, network and fair paths are drawn from a generator seeded by (seed, step), so
a resumed search draws the same paths and every DDP rank agrees without a broadcast.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from hwnas.search.config import SUPERNET_RULES as RULES
from search_spaces import SearchSpace
from search_spaces.choice import Choice
from search_spaces.darts.space import NONE
from search_spaces.proxyless import ZERO as SKIP

Weights = dict[str, Tensor]

NOTHING = frozenset({NONE, SKIP})
"""Choices that compute nothing: `network-multi` never joins them to a path."""


@dataclass(frozen=True)
class TrainingPaths:
    """The paths of one weight step: the first is trained on the labels; with `distill` the others
    are trained on its (detached) predictions, as BigNAS's in-place distillation does."""

    paths: tuple[Weights, ...]
    distill: bool = False


def choice_sizes(space: SearchSpace) -> dict[str, list[int]]:
    """Parameters of each candidate of each decision (the papers' independent supernet): what
    `largest` and `smallest` order by. Decisions the supernet does not hold as a `Choice`
    (UNAS's factorized slots) count every choice as 0, so their smallest is the first choice."""
    sizes = {d.name: [0] * len(d.choices) for d in space.decisions}
    for module in space.supernet(weight_sharing="independent").modules():
        if isinstance(module, Choice):
            for index, choice in enumerate(module.choices):
                if choice in module.candidates:
                    sizes[module.decision][index] = sum(p.numel() for p in module.candidates[choice].parameters())
    return sizes


def _one_hot(space: SearchSpace, index: Mapping[str, int], device: torch.device | str) -> Weights:
    weights = {}
    for decision in space.decisions:
        vector = torch.zeros(len(decision.choices), device=device)
        vector[index[decision.name]] = 1.0
        weights[decision.name] = vector
    return weights


class PathRule:
    """Draws the paths of each weight step for one search (see the module docstring)."""

    def __init__(self, space: SearchSpace, rule: str, seed: int, device: torch.device | str = "cpu") -> None:
        if rule not in RULES:
            raise ValueError(f"unknown supernet-training rule {rule!r}; allowed: {', '.join(RULES)}")
        self.space, self.rule, self.seed, self.device = space, rule, seed, device
        self.group = max(len(d.choices) for d in space.decisions)
        if rule == "sandwich":
            sizes = choice_sizes(space)
            self.largest = _one_hot(space, {k: int(np.argmax(v)) for k, v in sizes.items()}, device)
            self.smallest = _one_hot(space, {k: int(np.argmin(v)) for k, v in sizes.items()}, device)

    def _rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *key])

    def uniform(self, step: int) -> Weights:
        rng = self._rng(0, step)
        return _one_hot(self.space, {d.name: int(rng.integers(len(d.choices))) for d in self.space.decisions}, self.device)

    def depth(self, step: int) -> Weights:
        rng = self._rng(2, step)
        index = {}
        for decision in self.space.decisions:
            blocks = [i for i, choice in enumerate(decision.choices) if choice != SKIP]
            if len(blocks) < len(decision.choices) and rng.random() < 0.5:
                index[decision.name] = decision.choices.index(SKIP)
            else:
                index[decision.name] = blocks[int(rng.integers(len(blocks)))]
        return _one_hot(self.space, index, self.device)

    def network(self, step: int) -> Weights:
        return self.space.one_hot(self.space.sample_network(self._rng(3, step)), self.device)

    def network_multi(self, step: int) -> Weights:
        weights = self.network(step)
        rng = self._rng(4, step)
        for decision in self.space.decisions:
            vector = weights[decision.name]
            chosen = decision.choices[int(vector.argmax())]
            if chosen in NOTHING:
                continue
            others = [i for i, c in enumerate(decision.choices) if c not in NOTHING and c != chosen]
            joined = [i for i, keep in zip(others, rng.random(len(others)) < 0.5, strict=True) if keep]
            vector[joined] = 1.0
            weights[decision.name] = vector / vector.sum()
        return weights

    def fair(self, step: int) -> Weights:
        group, position = divmod(step, self.group)
        index = {}
        for number, decision in enumerate(self.space.decisions):
            rng = self._rng(1, group, number)
            order = np.concatenate([rng.permutation(len(decision.choices)),
                                    rng.integers(len(decision.choices), size=self.group)])
            index[decision.name] = int(order[position])
        return _one_hot(self.space, index, self.device)

    def __call__(self, step: int, estimator_weights: Callable[[], Weights]) -> TrainingPaths:
        """The paths for global step `step`; `estimator_weights()` draws what the `sample` rule trains at
        (called only by that rule, so the others leave the random stream of the estimator alone)."""
        if self.rule == "sample":
            return TrainingPaths((estimator_weights(),))
        if self.rule == "uniform":
            return TrainingPaths((self.uniform(step),))
        if self.rule == "fair":
            return TrainingPaths((self.fair(step),))
        if self.rule == "depth":
            return TrainingPaths((self.depth(step),))
        if self.rule == "network":
            return TrainingPaths((self.network(step),))
        if self.rule == "network-multi":
            return TrainingPaths((self.network_multi(step),))
        return TrainingPaths((self.largest, self.smallest, self.uniform(step)), distill=True)


def distillation_loss(logits: Tensor, teacher: Tensor) -> Tensor:
    """KL(teacher || student) in nats per example, the teacher's softmax detached (BigNAS in-place distillation)."""
    return nn.functional.kl_div(torch.log_softmax(logits, -1), torch.softmax(teacher.detach(), -1), reduction="batchmean")
