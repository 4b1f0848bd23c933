"""The peak memory of a search, estimated before its first step (issue #30).

An ImageNet-size search (224 px, batch 8) grew past 20 GiB in its first
architecture step and was killed by the kernel without a word: REBAR, DARTS
and SNAS evaluate the supernet with every candidate of every decision at
once, and the backward pass keeps all their activations. The estimate builds
the supernet on the meta device (nothing allocated) and runs the evaluation
the estimator makes: all candidates at relaxed weights, or one path at
one-hot weights for the single-path estimators. It counts the supernet's
weights with their gradients and optimiser state, and the activations the
architecture step keeps (once per batch its objective reads: search-val, and
search-train too for the generalisation objectives).
"""

from __future__ import annotations

from typing import Any

import torch

from hwnas.errors import UsageError
from hwnas.objectives import needs_train_loss
from search_spaces import SearchSpace
from search_spaces.memory import MemoryEstimate, estimate, refusal

ALL_CANDIDATES = frozenset({"rebar", "darts", "snas", "egs"})
"""Estimators whose architecture step runs every candidate (relaxed or ensemble weights)."""


def search_peak(space: SearchSpace, estimator: str, objective: str, arch_batch: int,
                image_shape: tuple[int, int, int], supernet: dict[str, Any]) -> MemoryEstimate:
    """Parameters and kept activations of the search's heaviest step (an architecture step)."""
    def weights(dense: bool) -> dict[str, torch.Tensor]:
        """Path weights on the CPU (the supernet picks the candidates to run from their values;
        0-dim slices of them combine with meta tensors)."""
        return {d.name: (torch.full((len(d.choices),), 1.0 / len(d.choices), device="cpu") if dense
                         else torch.nn.functional.one_hot(torch.tensor(0), len(d.choices)).float())
                for d in space.decisions}

    dense = estimator in ALL_CANDIDATES
    need = estimate(lambda: space.supernet(**supernet), (arch_batch, *image_shape), training=True,
                    forward=lambda net, x: net(x, weights(dense)))
    batches = 2 if needs_train_loss(objective) else 1
    return MemoryEstimate(need.parameters, need.activations * batches, training=True)


def check_search_fits(space: SearchSpace, config: Any, arch_batch: int, image_shape: tuple[int, int, int],
                      device: torch.device) -> None:
    """Refuse, in one line with the estimate and the flags that lower it, a search that would not fit
    (in the GPU's free memory on CUDA, else in the machine's available memory)."""
    estimator = config.estimator.accuracy
    need = search_peak(space, estimator, config.estimator.objective, arch_batch, image_shape,
                       {"weight_sharing": config.supernet.weight_sharing, "batchnorm": config.supernet.batchnorm})
    what = (f"this search's architecture step ({estimator}, "
            f"{'every candidate at once' if estimator in ALL_CANDIDATES else 'one path'}, "
            f"batch {arch_batch}, input {'x'.join(map(str, image_shape))})")
    limit = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None
    message = refusal(need, what, limit=limit, fix="lower --arch-batch-size (or --batch-size), --image-size or the space's widths, "
                                  "or use a single-path estimator (--estimator gdas)")
    if message:
        raise UsageError(message)
