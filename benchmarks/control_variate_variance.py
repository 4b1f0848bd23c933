"""The latency model as RELAX's control variate: per-step variance of the latency gradient (#27 item 4).

    python benchmarks/lut_models.py --preset search-default --samples 240   # the profile, once
    python benchmarks/control_variate_variance.py --draws 96 --steps 30        # reads that profile
    python benchmarks/control_variate_variance.py --report-only                # its tables again, from the file

The device profile (--profile) defaults to the one `lut_models.py --preset search-default` measures
(profiles/lut_models-search-default), so the latency model compared here is the one that benchmark scores.
The default search's setup (`hwnas.run.prepare`: the cluttered-MNIST proxyless space, ORT
latency on the CPU, the hinge penalty at the automatic target) with the given device profile. At two
architecture distributions of a real search, the uniform start and the state after `--steps`
architecture steps of `hwnas search`'s default estimators, `--draws` relaxed samples are drawn; each
sampled network is timed once as the search times it (`LatencyOracle.latency_ms`), and that one reward
feeds every estimator (a paired comparison):
  * RELAX with the stored model of the profile (what `hwnas lut fit` chose on validation);
  * RELAX with the calibrated per-op sum (one scale and offset on the profile's training split);
  * REINFORCE with no control variate, and with the search's moving-average baseline.
Reported per estimator: the mean over logits of the variance of the gradient d(latency term)/d(logits)
across the draws, its ratio to REINFORCE without a control variate, the correlation between the
measured penalty and the control variate's penalty at the sampled network, and between the measured and
the predicted milliseconds (with the model's MAPE against the search's own measurement).

The tables, with the command, commit, machine and load average, go to --json (default
benchmarks/results/control_variate_variance/draws<D>-steps<S>.json); `--report-only` prints them again.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import add_result_options, finish, json_path, provenance, report_only, table  # noqa: E402
from lut_models import profile_dir  # noqa: E402

from hwnas.estimators import ArchitectureDistribution, LinearSurrogate, MovingAverageBaseline, relax, reinforce, sample_relaxed  # noqa: E402
from hwnas.objectives import LatencyPenalty  # noqa: E402
from hwnas.run import Setup, auto_target, prepare, run_search  # noqa: E402
from hwnas.search import SearchConfig  # noqa: E402
from hwnas.search.latency import SEARCH_MEASURE, LatencyOracle, surrogate_from_table  # noqa: E402
from hwnas.search.terms import choices_of  # noqa: E402
from lut.fit import Dataset, features_from_names, is_test, make_dataset, op_vector  # noqa: E402
from lut.models import fit_calibrated_lut  # noqa: E402
from lut.samples import read_directory  # noqa: E402
from lut.table import LinearModel, load  # noqa: E402

def per_op_surrogate(setup: Setup) -> LinearSurrogate:
    """The calibrated per-op sum as a linear surrogate: scale and offset fitted on the profile's training split."""
    assert setup.profile is not None
    table = load(setup.profile)
    stored = table.model
    assert stored is not None
    features = features_from_names(setup.space.feature_names())
    data: Dataset = make_dataset(read_directory(setup.profile).records, features, table,
                                 str(stored.metrics.get("target_method", "block")))
    fraction = float(stored.metrics.get("test_fraction", 0.2))
    train = data.subset(np.array([not is_test(int(i), fraction) for i in data.indices]))
    fit = fit_calibrated_lut(train.z, train.y, *op_vector(table, features))
    model = LinearModel(fit.bias_ms, {f: float(c) for f, c in zip(features, fit.coef_ms, strict=True)}, fit.kind, 0.0,
                        len(train), stored.target)
    return surrogate_from_table(table.with_model(model), setup.space)


def gradient(surrogate: torch.Tensor, logits: dict[str, torch.Tensor]) -> np.ndarray:
    grads = torch.autograd.grad(surrogate, list(logits.values()), allow_unused=True, retain_graph=True)
    return torch.cat([g if g is not None else torch.zeros_like(v) for g, v in zip(grads, logits.values())]).detach().numpy()


def _correlation(pairs: list[tuple[float, float]]) -> float | None:
    """Pearson's r of the pairs; None where either side is constant (every sample under a hinge target: all
    penalties 0), where r is undefined."""
    x, y = np.array(pairs, dtype=float).T
    return None if x.std() == 0 or y.std() == 0 else float(np.corrcoef(x, y)[0, 1])


def variances(setup: Setup, logits: dict[str, torch.Tensor], penalty: LatencyPenalty, oracle: LatencyOracle,
              models: dict[str, LinearSurrogate], draws: int, seed: int) -> dict[str, Any]:
    """Gradient estimates of every estimator on the same `draws` samples and measured rewards."""
    config = setup.config
    tau = config.temperatures[0]
    dist = ArchitectureDistribution(logits)
    generator = torch.Generator().manual_seed(seed)
    estimates: dict[str, list[np.ndarray]] = {name: [] for name in
                                              [*(f"RELAX, {m}" for m in models), "REINFORCE, no control variate",
                                               "REINFORCE, moving-average baseline"]}
    pairs: dict[str, list[tuple[float, float]]] = {name: [] for name in models}
    ms_pairs: dict[str, list[tuple[float, float]]] = {name: [] for name in models}
    baseline = MovingAverageBaseline(0.9)
    for _ in range(draws):
        sample = sample_relaxed(dist, tau, conditional=config.estimator.conditional, generator=generator)
        arch = setup.space.architecture(choices_of(setup.space, sample.index))
        measured = oracle.latency_ms(arch)
        reward = penalty(measured)
        for name, model in models.items():
            control: Callable[[Any], Any] = lambda weights, g=model: penalty(g(weights))  # noqa: E731
            estimates[f"RELAX, {name}"].append(gradient(relax(sample, reward, control).surrogate, logits))
            with torch.no_grad():
                predicted = float(model(sample.packed_hard()))
            pairs[name].append((float(reward), float(penalty(predicted))))
            ms_pairs[name].append((measured, predicted))
        estimates["REINFORCE, no control variate"].append(gradient(reinforce(sample, reward, 0.0).surrogate, logits))
        estimates["REINFORCE, moving-average baseline"].append(
            gradient(reinforce(sample, reward, baseline.value).surrogate, logits))
        baseline.update(reward)
    none = float(np.stack(estimates["REINFORCE, no control variate"]).var(0).mean())
    rows = {}
    for name, values in estimates.items():
        variance = float(np.stack(values).var(0).mean())
        model = name.removeprefix("RELAX, ")
        correlation = _correlation(pairs[model]) if model in pairs else None
        ms = _correlation(ms_pairs[model]) if model in ms_pairs else None
        mape = float(np.mean([abs(p - m) / m for m, p in ms_pairs[model]]) * 100) if model in ms_pairs else None
        rows[name] = {"variance": variance, "ratio_to_none": variance / none if none > 0 else None,
                      "correlation": correlation,
                      "correlation_ms": ms, "mape_vs_search_measurement": mape}
    rewards = [p[0] for p in next(iter(pairs.values()))]
    return {"estimators": rows, "share_above_target": float(np.mean(np.array(rewards) > 0)), "draws": draws}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", type=Path, default=None,
                        help=f"device profile of the default search's conditions (default: {profile_dir('search-default')}, "
                             "made by `benchmarks/lut_models.py --preset search-default`)")
    parser.add_argument("--draws", type=int, default=48, help="samples per distribution (default 48)")
    parser.add_argument("--steps", type=int, default=30, help="search steps before the second state (default 30)")
    parser.add_argument("--warmup", type=int, default=20, help="weight-only warm-up steps (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    add_result_options(parser, "control_variate_variance", "draws<draws>-steps<steps>")
    args = parser.parse_args(argv)
    path = json_path(args, "control_variate_variance", f"draws{args.draws}-steps{args.steps}")
    if args.report_only:
        return report_only(path)
    profile = args.profile if args.profile is not None else profile_dir("search-default")
    if not (profile / "lut.json").is_file():
        print(f"error: {profile} holds no device profile (lut.json); make it with `python benchmarks/lut_models.py "
              "--preset search-default` or give --profile DIR", file=sys.stderr)
        return 2
    if args.draws < 2 or args.steps < 1 or args.warmup < 0:
        print(f"error: --draws must be >= 2 and --steps >= 1, --warmup >= 0 (got {args.draws}, {args.steps}, "
              f"{args.warmup})", file=sys.stderr)
        return 2
    started = time.perf_counter()
    document: dict[str, Any] = {"benchmark": "control_variate_variance", "provenance": provenance(argv),
                                "profile": str(profile),
                                "settings": {"draws": args.draws, "steps": args.steps, "warmup": args.warmup,
                                             "seed": args.seed}}
    setup = prepare(SearchConfig.from_flat(seed=args.seed, progress=False, lut=str(profile)))
    target = auto_target(profile)
    config = setup.config
    penalty = LatencyPenalty(target, config.latency.penalty, config.latency.weight, config.latency.beta)
    assert setup.surrogate is not None
    stored = load(profile).model
    models = {f"stored model ({stored.name if stored else '?'})": setup.surrogate,
              "calibrated per-op sum": per_op_surrogate(setup)}
    oracle = LatencyOracle(setup.space, setup.conditions, config=SEARCH_MEASURE)
    uniform = {d.name: torch.zeros(len(d.choices), dtype=torch.float64, requires_grad=True) for d in setup.space.decisions}
    states = {"uniform (step 0)": uniform}
    with tempfile.TemporaryDirectory() as work:
        result = run_search(config.replace(steps=args.steps, warmup_steps=args.warmup, latency_target_ms=target),
                            Path(work) / "search", data=setup.data, surrogate=setup.surrogate, measure_final=False)
    states[f"after {args.steps} search steps"] = {
        name: torch.log(torch.tensor(list(p.values()), dtype=torch.float64)).requires_grad_(True)
        for name, p in result.probabilities.items()}
    document.update(target_ms=target, tau=config.temperatures[0], states={})
    for label, logits in states.items():
        outcome = variances(setup, logits, penalty, oracle, models, args.draws, args.seed + 1)
        document["states"][label] = outcome
        table(document, f"latency-gradient variance, {label} ({args.draws} draws, "
                    f"{100 * outcome['share_above_target']:.0f}% of samples above the {target:.4f} ms target)",
                    ["estimator", "mean variance per logit", "x no control variate", "corr(measured, control) penalty",
                     "corr(measured, model) ms", "model vs search's measurement, MAPE %"],
                    [[name, f"{r['variance']:.3g}", *("-" if r[key] is None else r[key]
                                                      for key in ("ratio_to_none", "correlation", "correlation_ms",
                                                                  "mape_vs_search_measurement"))]
                     for name, r in outcome["estimators"].items()])
    oracle.close() if hasattr(oracle, "close") else None
    return finish(document, path, started)


if __name__ == "__main__":
    raise SystemExit(main())
