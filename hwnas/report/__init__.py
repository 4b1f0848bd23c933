"""report.md with PNG plots for a search run directory.

`write_report(run_dir)` reads metrics.jsonl, arch.json, config.json and
latencies.jsonl (`hwnas.report.runfiles`) and writes, beside them:

    report.md              settings, the result against the target, the plots
    probabilities.png      probability of each choice per decision over the steps
    latency.png            sampled / expected latency (ms) against the target over the steps
    architecture.png       the derived architecture (DARTS cells / MBConv block diagram)
    latency_accuracy.png   sampled architectures: measured latency vs search-val accuracy
    training.png           supernet loss and search-val accuracy
    standing.png           inherited-weight accuracy vs measured latency: the derived network among
                           the profile's random networks (standing.json), with their Pareto front

A plot whose data the run lacks is left out and report.md names the
missing field, so an older or partial run still gets a report.
"""

from __future__ import annotations

from pathlib import Path

from hwnas.report import drawings, plots
from hwnas.report.compare import percentile_among
from hwnas.report.plots import among_random
from hwnas.report.runfiles import SUPERNET_TAIL, RunFiles, binned, read_run, search_val_accuracy, tail_mean
from search_spaces.files import atomic_write

PLOTS = (
    ("probabilities.png", "Architecture distribution", plots.probabilities),
    ("latency.png", "Latency against target", plots.latency),
    ("latency_accuracy.png", "Sampled architectures: latency and accuracy", plots.latency_vs_accuracy),
    ("training.png", "Supernet training", plots.curves),
)


def _fmt(value: object, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}{unit}" if isinstance(value, float) else f"{value}{unit}"


def _summary(run: RunFiles) -> list[str]:
    search, result = run.search, run.arch.get("search", {})
    rows = [
        ("space", run.arch.get("space", run.config.get("space", {}).get("name"))),
        ("estimator (accuracy / latency)", f"{search.get('estimator', result.get('estimator'))} / "
                                           f"{search.get('latency_estimator', result.get('latency_estimator'))}"),
        ("steps", result.get("steps", search.get("steps"))),
        ("latency target", _fmt(run.target_ms, " ms")),
        ("predicted latency of the derived network", _fmt(result.get("predicted_latency_ms"), " ms")),
        ("measured latency of the derived network", _fmt(result.get("measured_latency_ms"), " ms")),
        ("architectures timed during search", result.get("measured_during_search", len(run.latencies))),
        ("search time", _fmt(result.get("seconds"), " s")),
        ("data", run.config.get("data", {}).get("dataset")),
    ]
    lines = ["| | |", "|---|---|"] + [f"| {key} | {value} |" for key, value in rows if value is not None]
    measured, target = result.get("measured_latency_ms"), run.target_ms
    if measured is not None and target is not None:
        verdict = "meets" if measured <= target else "misses"
        lines += ["", f"The derived network **{verdict}** the target: {measured:.4g} ms measured vs {target:.4g} ms."]
    return lines


def _supernet_curve(run: RunFiles) -> list[str]:
    """The supernet's search-val accuracy per tenth of the architecture steps, and its last 20%."""
    values = search_val_accuracy(run.metrics)
    if not values:
        return ["No architecture step logged a search-val accuracy."]
    curve = binned(values)
    return ["Search-val batch accuracy averaged per tenth of the architecture steps:", "",
            "| " + " | ".join(f"{10 * (i + 1)}%" for i in range(len(curve))) + " |", "|" + "---|" * len(curve),
            "| " + " | ".join(f"{v:.3f}" for v in curve) + " |", "",
            f"Last {SUPERNET_TAIL:.0%} of the architecture steps: {tail_mean(values):.4f} (chance is "
            f"{1 / max(run.config.get('data', {}).get('num_classes', 10), 1):.2f})."]


def _standing(run: RunFiles) -> list[str]:
    """The derived network among the profile's random networks, inherited-weight accuracy vs measured latency."""
    if not run.standing:
        return ["Not drawn: the run has no standing.json (no device profile, or an older run)."]
    derived, random = run.standing["derived"], run.standing["random"]
    written = among_random([(r["latency_ms"], r["accuracy"]) for r in random],
                           {"derived network": [(derived["latency_ms"], derived["accuracy"])]},
                           run.path / "standing.png", ylabel=f"accuracy on search-{run.standing.get('split', 'val')}, "
                           "inherited weights (BN recalibrated)", title="derived network among the profile's random networks",
                           targets=[] if run.target_ms is None else [run.target_ms])
    accuracies = [r["accuracy"] for r in random]
    return [f"![derived network among random networks]({written.name})" if written else "Not drawn: no networks.", "",
            f"Derived network {derived['accuracy']:.4f} at {derived['latency_ms']:.4g} ms; its percentile among these "
            f"{len(random)} random networks (nearest in latency): {percentile_among(derived['accuracy'], accuracies):.0f}."]


def write_report(run_dir: str | Path) -> Path:
    """Write report.md and its PNGs into `run_dir`; returns the report's path."""
    run = read_run(run_dir)
    lines = [f"# Search report: {run.path.name}", "", *_summary(run), ""]
    if run.arch.get("choices"):
        lines += ["## Derived architecture", ""]
        drawn = drawings.draw_architecture(run.arch, run.path / "architecture.png")
        lines += [f"![derived architecture]({drawn.name})" if drawn else "(no drawing for this space)", ""]
        lines += ["```", *(f"{k}: {v}" for k, v in run.arch["choices"].items()), "```", ""]
    else:
        lines += ["## Derived architecture", "", "arch.json is missing: the search has not finished.", ""]
    for file_name, title, plot in PLOTS:
        written = plot(run, run.path / file_name)
        lines += [f"## {title}", ""]
        lines += [f"![{title}]({written.name})" if written else f"Not drawn: {plots.MISSING[plot]}.", ""]
    lines += ["## Supernet accuracy curve", "", *_supernet_curve(run), ""]
    lines += ["## Derived network among random networks (inherited weights)", "", *_standing(run), ""]
    report = run.path / "report.md"
    atomic_write(report, "\n".join(lines))
    return report


__all__ = ["RunFiles", "read_run", "write_report"]
