"""report.md with PNG plots for a search run directory.

`write_report(run_dir)` reads metrics.jsonl, arch.json, config.json and
latencies.jsonl (`hwnas.report.runfiles`) and writes, beside them:

    report.md              settings, the result against the target, the plots
    probabilities.png      probability of each choice per decision over the steps
    latency.png            sampled / expected latency (ms) against the target over the steps
    architecture.png       the derived architecture (DARTS cells / MBConv block diagram)
    latency_accuracy.png   sampled architectures: measured latency vs search-val accuracy
    training.png           supernet loss and search-val accuracy

A plot whose data the run lacks is left out and report.md names the
missing field, so an older or partial run still gets a report.
"""

from __future__ import annotations

from pathlib import Path

from hwnas.report import drawings, plots
from hwnas.report.runfiles import RunFiles, read_run

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
    report = run.path / "report.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    return report


__all__ = ["RunFiles", "read_run", "write_report"]
