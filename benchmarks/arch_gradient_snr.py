"""How much signal one architecture step carries: the signal-to-noise ratio of the estimator's gradient (#12).

    python benchmarks/arch_gradient_snr.py [--draws 96] [--seed 0]
    python benchmarks/arch_gradient_snr.py --report-only --json benchmarks/results/arch_gradient_snr/seed0.json

A search moves the logits phi by Adam steps on a noisy, unbiased estimate g_t
of the gradient of E_b[L(b)]. After n steps a decision's derived choice is
right about as often as its accumulated drift n * mean(g) beats the noise
sqrt(n) * std(g): per coordinate, z ~ SNR * sqrt(n). So the SNR of one step says
how many architecture steps a search needs before its argmax means anything.

Protocol: a shared-weight supernet is warmed up exactly as a search warms it up
(`run_search` with the SearchConfig defaults on the #12 benchmarks' task,
`_common.TASKS["cluttered"]`, proxyless; no latency term). At the uniform
distribution it then draws `--draws` independent gradient estimates of the
accuracy term (L_gen, UNAS's objective), each on fresh search-train and
search-val batches with a fresh architecture sample, for:

- REINFORCE: REBAR with eta = 0 (the score-function term alone);
- REBAR (UNAS, eta = 1) at the search's batch of 32;
- REBAR at a batch of 128 (4x the images per step).

With G the draws (rows) and mu, Sigma their mean and covariance:
signal^2 = |mu|^2 - tr(Sigma)/K (unbiased for |E g|^2), noise = sqrt(tr Sigma),
SNR = signal / noise, steps for z = 2 = (2 / SNR)^2; the +- is the jackknife
standard error over the draws (leave one draw out). The ratio column is each
noise against REINFORCE's, measured in the same run.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import add_result_options, bench_config, finish, json_path, provenance, report_only, table  # noqa: E402

from hwnas.estimators import MovingAverageBaseline  # noqa: E402
from hwnas.run import run_search  # noqa: E402
from hwnas.search.steps import ArchContext, architecture_gradient  # noqa: E402
from hwnas.search.terms import AccuracyTerm  # noqa: E402

VARIANTS = [("REINFORCE (REBAR, eta 0)", 32, 0.0), ("REBAR (UNAS, eta 1)", 32, 1.0), ("REBAR, batch 128", 128, 1.0)]


def snr_of(draws: np.ndarray) -> tuple[float, float, float]:
    """(signal, noise, SNR) of K gradient draws (rows), with the unbiased |E g|^2."""
    count = len(draws)
    trace = float(draws.var(axis=0, ddof=1).sum())
    signal2 = max(float((draws.mean(axis=0) ** 2).sum()) - trace / count, 0.0)
    return math.sqrt(signal2), math.sqrt(trace), math.sqrt(signal2 / trace) if trace > 0 else float("nan")


def jackknife_se(draws: np.ndarray) -> float:
    """Standard error of the SNR over the draws (leave-one-out jackknife)."""
    count = len(draws)
    values = np.array([snr_of(np.delete(draws, i, axis=0))[2] for i in range(count)])
    return float(math.sqrt((count - 1) / count * ((values - values.mean()) ** 2).sum()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=96, help="gradient estimates per variant (default 96)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="runs/bench-arch-gradient-snr", help="the warm-up search and the raw draws go here")
    add_result_options(parser, "arch_gradient_snr", "seed<seed>")
    args = parser.parse_args(argv)
    path = json_path(args, "arch_gradient_snr", f"seed{args.seed}")
    if args.report_only:
        return report_only(path)
    if args.draws < 4:
        parser.error("--draws must be at least 4")
    torch.set_num_threads(1)
    config = bench_config("cluttered", "proxyless", estimator="rebar", latency_estimator="none", steps=1,
                          seed=args.seed, latency_timing="inline")
    started = time.perf_counter()
    document: dict = {"benchmark": "arch_gradient_snr", "provenance": provenance(argv), "config": config.flat()}
    warmed = run_search(config, Path(args.work) / f"warmup-seed{args.seed}", measure_final=False)
    print(f"warm-up: {config.warmup_steps_for(len(warmed.data.train))} weight steps in {time.perf_counter() - started:.0f} s")
    net, data = warmed.supernet, warmed.data
    generator = torch.Generator().manual_seed(args.seed + 1)

    def batch(split: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = data.split(split).tensors
        chosen = torch.randint(len(labels), (size,), generator=generator)
        return images[chosen], labels[chosen]

    rows, results = [], []
    for name, size, eta in VARIANTS:
        logits = {d.name: torch.zeros(len(d.choices), requires_grad=True) for d in warmed.space.decisions}
        draws, clock = [], time.perf_counter()
        for _ in range(args.draws):
            train_batch, val_batch = batch("train", size), batch("val", size)
            term = AccuracyTerm(net, config.estimator.objective, config.estimator.gen_lambda, train_batch, val_batch)
            ctx = ArchContext(config.replace(rebar_eta=eta).estimator, net, logits, term, None, config.temperatures[0],
                              config.loop.w_lr, train_batch, MovingAverageBaseline(config.estimator.baseline_decay))
            grads, _ = architecture_gradient(ctx)
            draws.append(torch.cat([grads[n].detach().flatten() for n in logits]).numpy())
        seconds = (time.perf_counter() - clock) / args.draws
        matrix = np.stack(draws)
        signal, noise, snr = snr_of(matrix)
        error = jackknife_se(matrix)
        np.save(Path(args.work) / f"draws-seed{args.seed}-b{size}-eta{eta:g}.npy", matrix)
        results.append({"variant": name, "batch": size, "eta": eta, "draws": args.draws, "signal": signal, "noise": noise,
                        "snr": snr, "snr_se": error, "seconds_per_estimate": seconds})
        print(f"{name}: SNR {snr:.3f} ± {error:.3f}, {seconds:.2f} s per estimate", flush=True)
    reference = results[0]["noise"]
    for entry in results:
        steps = (2 / entry["snr"]) ** 2 if entry["snr"] > 0 else float("inf")
        rows.append([entry["variant"], entry["batch"], entry["signal"], entry["noise"], entry["noise"] / reference,
                     f"{entry['snr']:.3f} ± {entry['snr_se']:.3f}",
                     f"{steps:.0f}" if math.isfinite(steps) else "inf", entry["seconds_per_estimate"]])
        entry["steps_for_z2"] = steps
    table(document, f"architecture-gradient SNR at the uniform distribution after warm-up ({args.draws} draws each; "
                "± jackknife SE)", ["estimator", "batch", "|E g|", "noise sqrt(tr Cov)", "noise / REINFORCE's",
                                  "SNR per step", "steps for z = 2", "s per estimate"], rows)
    document["results"] = results
    return finish(document, path, started)


if __name__ == "__main__":
    raise SystemExit(main())
