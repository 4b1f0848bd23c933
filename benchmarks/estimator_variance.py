"""Bias and variance of every architecture-gradient estimator on toys with an exact gradient.

    python benchmarks/estimator_variance.py            # 20,000 estimates per row, ~1 min on 2 cores
    python benchmarks/estimator_variance.py --quick    # 4,000 per row

Toy: 4 decisions x 5 choices (625 architectures), value table = additive part
+ interaction x random table, smooth (multilinear) extension for the pathwise
and REBAR estimators; RELAX gets the table value as its non-differentiable
reward and a least-squares linear surrogate as its control variate. Two toys:
interaction 0.3 (the surrogate's correlation with f is reported, >= 0.95) and 1.0.

Per row: relative bias ||mean - exact|| / ||exact||, max |z| over coordinates
(z = (mean - exact) / standard error; unbiased estimators stay near 2-3 at
this size), mean per-coordinate variance of one estimate, and its ratio to
REINFORCE with a moving-average baseline (decay 0.9) measured in the same run.
Then online tuning of tau and eta (hwnas.estimators.VarianceTuner) from tau = 0.1.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the toys live with the estimator tests

from _common import machine, print_table  # noqa: E402
from estimator_toys import ToyProblem, enumerate_architectures, exact_gradient, per_sample_gradients, summarise  # noqa: E402

from hwnas.estimators import (  # noqa: E402
    LinearSurrogate,
    VarianceTuner,
    expected_latency,
    gumbel_softmax,
    moving_average_baselines,
    rebar,
    reinforce,
    relax,
    sample_hard,
    sample_relaxed,
    straight_through_gumbel,
)
from profilers import torch_threads  # noqa: E402

TAUS = (0.1, 0.3, 0.5, 1.0, 2.0)


def _estimators(toy: ToyProblem, surrogate: LinearSurrogate, g: torch.Generator):
    """(name, tau, builder) rows; REINFORCE with a moving-average baseline first."""

    def reinforce_ma(dist):
        s = sample_hard(dist, generator=g)
        reward = toy.lookup(s.index)
        return reinforce(s, reward, moving_average_baselines(reward, 0.9)).surrogate

    def relax_with(tau, variant, eta=1.0):
        def est(dist):
            s = sample_relaxed(dist, tau, generator=g, conditional=variant)
            return relax(s, toy.lookup(s.index), surrogate, eta=eta).surrogate
        return est

    rows = [("REINFORCE + moving average", "-", reinforce_ma)]
    for tau in TAUS:
        for variant in ("reuse", "fresh"):
            rows.append((f"REBAR ({variant} u)", tau, lambda d, t=tau, v=variant: rebar(sample_relaxed(d, t, generator=g, conditional=v), toy).surrogate))
            rows.append((f"RELAX ({variant} u), linear g", tau, relax_with(tau, variant)))
    for tau in (0.5, 1.0):
        rows.append(("Gumbel-softmax (SNAS)", tau, lambda d, t=tau: gumbel_softmax(d, toy, t, generator=g).surrogate))
        rows.append(("straight-through (GDAS)", tau, lambda d, t=tau: straight_through_gumbel(d, toy, t, generator=g).surrogate))
    rows.append(("expected LUT (FBNet)", "-", lambda d: expected_latency(d, surrogate)))
    return rows


def _correlation(toy: ToyProblem, surrogate: LinearSurrogate) -> float:
    dist = toy.distribution()
    index = enumerate_architectures(dist)
    x, y, p = toy.lookup(index), surrogate(dist.one_hot(index)), dist.log_prob(index).exp()
    mx, my = (p * x).sum(), (p * y).sum()
    return float((p * (x - mx) * (y - my)).sum() / ((p * (x - mx) ** 2).sum() * (p * (y - my) ** 2).sum()).sqrt())


def _tuning(toy: ToyProblem, surrogate: LinearSurrogate, steps: int, n: int, seed: int) -> list[list]:
    tuner = VarianceTuner(tau=0.1, eta=1.0, lr=0.05)
    leaves = {k: t.clone().requires_grad_(True) for k, t in toy.logits.items()}
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        s = sample_relaxed(leaves, tuner.tau, sample_shape=(64,), generator=g)
        tuner.step(relax(s, toy.lookup(s.index), surrogate, eta=tuner.eta), leaves)
    tau, eta = float(tuner.tau.detach()), float(tuner.eta.detach())
    exact = exact_gradient(toy.logits, toy)
    out = []
    for label, t, e in (("start", 0.1, 1.0), ("tuned", tau, eta), ("fixed tau 0.5", 0.5, 1.0)):
        g2 = torch.Generator().manual_seed(seed + 1)

        def est(dist, t=t, e=e):
            s = sample_relaxed(dist, t, generator=g2)
            return relax(s, toy.lookup(s.index), surrogate, eta=e).surrogate

        out.append([label, round(t, 3), round(e, 3), summarise(per_sample_gradients(toy.logits, n, est), exact).variance])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="4,000 estimates per row")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tuning-steps", type=int, default=200)
    args = parser.parse_args()
    n = 4_000 if args.quick else args.samples
    print(machine())
    print(f"estimates per row: {n}, toy seed {args.seed}, torch threads 1")
    for interaction in (0.3, 1.0):
        toy = ToyProblem.random(decisions=4, choices=5, interaction=interaction, seed=args.seed)
        index = enumerate_architectures(toy.logits)
        surrogate = LinearSurrogate.fit(toy.logits, index, toy.lookup(index))
        exact = exact_gradient(toy.logits, toy)
        rows, reference = [], None
        for name, tau, build in _estimators(toy, surrogate, torch.Generator().manual_seed(args.seed + 1)):
            start = time.perf_counter()
            stats = summarise(per_sample_gradients(toy.logits, n, build), exact)
            seconds = time.perf_counter() - start
            reference = reference if reference is not None else stats.variance
            max_z = float(stats.z.abs().max())
            rows.append([name, tau, stats.relative_bias, "deterministic" if stats.variance == 0 else max_z,
                         stats.variance, stats.variance / reference, 1e6 * seconds / n])
        print_table(
            f"interaction {interaction}: corr(f, linear g) under p = {_correlation(toy, surrogate):.3f}, "
            f"||exact grad|| = {float(torch.cat(list(exact.values())).norm()):.3f}",
            ["estimator", "tau", "rel. bias", "max abs z", "variance", "var / REINFORCE", "us per estimate"],
            rows,
        )
        tuning = _tuning(toy, surrogate, args.tuning_steps, n, args.seed + 2)
        print_table(
            f"interaction {interaction}: online tau/eta tuning of RELAX ({args.tuning_steps} steps x 64 samples, Adam lr 0.05)",
            ["setting", "tau", "eta", "variance", "var / REINFORCE"],
            [[*row, row[-1] / reference] for row in tuning],
        )


if __name__ == "__main__":
    with torch_threads(1):
        main()
