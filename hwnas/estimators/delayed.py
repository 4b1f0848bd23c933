"""RELAX with the measured value arriving later: the estimate split at the one value it waits for.

Timing a sampled network takes longer than the control variate, so a search
may time b_t while it trains (`hwnas.search.latency_worker`) and apply b_t's
latency gradient at step t+1. RELAX (UNAS Eq. 5) is linear in the measured
value ``R = h(L_n(b))``::

    g_hat = [R - c~] d log p(b)/d phi + d c/d phi - d c~/d phi
          = R * score  +  base,       score = d log p(b)/d phi = onehot(b) - theta,
                                      base  = -c~ score + d (c - c~)/d phi

Everything but R is computed at step t, at the phi_t that drew b (`pending_relax`);
`PendingGradient.complete(R)` finishes it once R is known. The completed
estimate is, sample by sample, the synchronous RELAX estimate at phi_t, so it
is unbiased for the gradient of E_{p_phi_t}[h(L_n)] at phi_t whatever phi does
in between (tests/test_search_latency.py checks both on an exact toy). Why:
R depends on b alone (the network that is timed), and c, c~ and the score are
frozen at phi_t, so nothing computed after the draw enters the estimate. What
the delay changes is where the gradient is applied: at phi_{t+1}, one Adam
step later -- a stale gradient of delay one, as in asynchronous SGD, not a
biased estimator. The online latency model may use only values measured
before b was drawn (it does: b's own value arrives after).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from hwnas.estimators.distribution import DecisionKey
from hwnas.estimators.gumbel import RelaxedSample
from hwnas.estimators.score_function import Scalar, relax


@dataclass(frozen=True)
class PendingGradient:
    """RELAX's gradient wrt the logits for drawn samples, all but their measured values.

    ``score[k]`` has the sample's shape (one row per sample), ``base[k]`` is
    already summed over samples, both detached.
    """

    score: dict[DecisionKey, Tensor]
    base: dict[DecisionKey, Tensor]

    def complete(self, reward: Tensor | float) -> dict[DecisionKey, Tensor]:
        """The summed RELAX gradient once ``reward`` (one value per sample, or a scalar) is known."""
        out = {}
        for key, score in self.score.items():
            r = torch.as_tensor(reward, dtype=score.dtype, device=score.device)
            weighted = r.reshape(r.shape + (1,) * (score.dim() - r.dim())) * score
            out[key] = weighted.sum_to_size(self.base[key].shape) + self.base[key]
        return out


def pending_relax(
    sample: RelaxedSample,
    control_variate: Callable[[Tensor], Tensor],
    logits: Mapping[DecisionKey, Tensor],
    *,
    eta: Scalar = 1.0,
) -> PendingGradient:
    """Everything of `relax(sample, R, control_variate)`'s gradient wrt `logits` except R.

    ``control_variate`` takes packed relaxed one-hots, as `relax` does; `logits`
    are the leaves the sample was drawn from.
    """
    keys = list(sample.score)
    zero = torch.zeros_like(sample.log_prob)
    surrogate = relax(sample, zero, control_variate, eta=eta).surrogate.sum()
    # retain: the sample's graph (theta, zeta) is shared with the step's other terms
    grads = torch.autograd.grad(surrogate, [logits[k] for k in keys], allow_unused=True, retain_graph=True)
    base = {k: torch.zeros_like(logits[k]) if g is None else g.detach() for k, g in zip(keys, grads, strict=True)}
    return PendingGradient(score={k: sample.score[k].detach() for k in keys}, base=base)
