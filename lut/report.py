"""report.md and its PNG plots: how good the fitted latency model is, in words a reader can check.

The tables put the fitted linear model beside the baselines and the
test-retest noise floor, all on the held-out networks; the learning curve
says how many samples the fit needs. Plots use matplotlib's Agg backend
(no display needed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


from lut.fit import FitReport, LearningPoint, networks_needed
from lut.metrics import FitMetrics, relative_errors
from lut.samples import ReadResult
from lut.table import LatencyTable
from search_spaces.files import atomic_write

PLOT_PREDICTED = "predicted_vs_measured.png"
PLOT_ERRORS = "error_histogram.png"
PLOT_LEARNING = "learning_curve.png"


Rows = tuple[list[str], list[list[str]]]
"""A table as (column names, rows of cells as text): printed as Markdown here, and recorded cell by cell by the
benchmarks (`benchmarks/_common.table`), so their report-only mode prints the very cells a run printed."""


def markdown(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table of text cells."""
    return "\n".join(["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
                     + ["| " + " | ".join(row) + " |" for row in rows])


def _cells(name: str, m: FitMetrics, validation: str | None = None) -> list[str]:
    return [name, *([] if validation is None else [validation]), str(m.n), f"{m.mape:.2f}", f"{m.rmse_ms:.4f}",
            f"{100 * m.within_5:.0f}", f"{100 * m.within_10:.0f}", f"{m.spearman:.3f}", f"{m.kendall:.3f}"]


def metrics_rows(
    rows: Mapping[str, FitMetrics],
    chosen: str | None = None,
    floors: Mapping[str, FitMetrics] | None = None,
    target: str | None = None,
    validation: Mapping[str, FitMetrics] | None = None,
    storable: Sequence[str] | None = None,
) -> Rows:
    """Every predictor on the held-out nets, then the noise floor of each latency reading.

    With `validation`, a first column gives each model's validation MAPE (what chose the stored one);
    with `storable`, models lut.json cannot store are marked as references."""
    columns = ["predictor (held-out nets)", *([] if validation is None else ["valid. MAPE %"]),
               "n", "MAPE %", "RMSE ms", "±5%", "±10%", "Spearman", "Kendall"]
    out = []
    for name, metrics in rows.items():
        mark = " **(stored)**" if name == chosen else ""
        if storable is not None and validation is not None and name in validation and name not in storable:
            mark = " (reference: not linear, not storable)"
        valid = None if validation is None else (f"{validation[name].mape:.2f}" if name in validation else "-")
        out.append(_cells(name + mark, metrics, valid))
    for method, metrics in (floors or {}).items():
        mark = " **(fitted)**" if method == target else ""
        out.append(_cells(f"noise floor: retest vs first pass, {method} reading{mark}", metrics,
                          None if validation is None else "-"))
    return columns, out


def fit_rows(report: FitReport) -> Rows:
    """The comparison table of a fresh fit: validation MAPE, held-out metrics, noise floors."""
    return metrics_rows(report.metrics, report.chosen, report.noise_floors, report.target, report.validation,
                        report.storable)


def fit_table(report: FitReport) -> str:
    """`fit_rows` as a Markdown table."""
    return markdown(*fit_rows(report))


def stored_fit_table(model_metrics: Mapping[str, Any], name: str) -> str:
    """The same table from the metrics stored in lut.json (no refit), then the stored learning curve."""
    rows = {n: FitMetrics.from_dict(data) for n, data in model_metrics.get("test", {}).items()}
    floors = {m: FitMetrics.from_dict(data) for m, data in (model_metrics.get("noise_floors") or {}).items()}
    validation = {n: FitMetrics.from_dict(data) for n, data in (model_metrics.get("validation") or {}).items()}
    table = markdown(*metrics_rows(rows, name, floors, model_metrics.get("target_method"), validation or None,
                                   model_metrics.get("storable")))
    points = [LearningPoint(p["model"], p["n_train"], *(math.nan if p.get(k) is None else float(p[k])
                                                        for k in ("mape", "spearman", "kendall", "within_5")))
              for p in model_metrics.get("learning") or []]
    if not points:
        return table
    return table + "\n\nLearning curve (held-out, mean of 5 random training subsets):\n\n" + learning_table(
        points, model_metrics.get("networks_needed") or {})


def learning_rows(points: Sequence[LearningPoint], needed: Mapping[str, int] | None = None) -> Rows:
    """Rows: training-set size; columns: each model's held-out MAPE and Kendall tau (a last row: the
    networks each model needs, lut.fit.networks_needed)."""
    kinds = list(dict.fromkeys(p.kind for p in points))
    sizes = sorted({p.n_train for p in points})
    by = {(p.kind, p.n_train): p for p in points}
    columns = ["training nets", *(f"{k}: {what}" for k in kinds for what in ("MAPE %", "Kendall"))]
    rows = []
    for n in sizes:
        cells = []
        for k in kinds:
            p = by.get((k, n))
            cells += ["", ""] if p is None else [f"{p.mape:.2f}", f"{p.kendall:.3f}"]
        rows.append([str(n), *cells])
    if needed:
        rows.append(["networks needed (MAPE within 10% of the full split's)",
                     *(cell for k in kinds for cell in (str(needed.get(k, "-")), ""))])
    return columns, rows


def learning_table(points: Sequence[LearningPoint], needed: Mapping[str, int] | None = None) -> str:
    """`learning_rows` as a Markdown table."""
    return markdown(*learning_rows(points, needed))


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot(out: Path, report: FitReport) -> None:
    """The three PNGs: predicted vs measured per predictor, error histogram, learning curve."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    names = list(report.predictions)
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.0 * rows), squeeze=False)
    measured = report.measured_test
    for ax, name in zip(axes.ravel(), names):
        predicted = report.predictions[name]
        ax.scatter(measured, predicted, s=10, alpha=0.7)
        low, high = float(min(measured.min(), predicted.min())), float(max(measured.max(), predicted.max()))
        ax.plot([low, high], [low, high], "k--", linewidth=0.8)
        m = report.metrics[name]
        ax.set_title(f"{name}\nMAPE {m.mape:.1f}%  Spearman {m.spearman:.2f}", fontsize=9)
        ax.set(xlabel="measured (ms)", ylabel="predicted (ms)")
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    _save(fig, out / PLOT_PREDICTED)

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in (n for n in dict.fromkeys((report.chosen, "LUT sum, calibrated", "MACs (linear)")) if n in report.predictions):
        ax.hist(100 * relative_errors(report.predictions[name], measured), bins=30, alpha=0.5, label=name)
    ax.axvline(0, color="k", linewidth=0.8)
    ax.set(xlabel="prediction error (% of measured)", ylabel="held-out networks")
    ax.legend(fontsize=8)
    _save(fig, out / PLOT_ERRORS)

    fig, ax = plt.subplots(figsize=(6, 4))
    for kind in dict.fromkeys(p.kind for p in report.learning):
        points = sorted((p for p in report.learning if p.kind == kind), key=lambda p: p.n_train)
        ax.plot([p.n_train for p in points], [p.mape for p in points], marker="o", label=kind)
    if report.noise is not None:
        ax.axhline(report.noise.mape / 2**0.5, color="k", linestyle="--", linewidth=0.8,
                   label="one measurement's error (retest MAPE / √2)")
    ax.set_xscale("log")
    ax.set(xlabel="training networks", ylabel="held-out MAPE %")
    ax.legend(fontsize=8)
    _save(fig, out / PLOT_LEARNING)


def _context_lines(table: LatencyTable) -> list[str]:
    c = table.conditions
    context: dict[str, Any] = dict(table.context)
    keep = {k: v for k, v in context.items() if isinstance(v, str | int | float) and k != "input_shape"}
    lines = [
        f"- space: `{table.space}` v{table.space_version}, signature `{table.space_signature}`, "
        f"config `{dict(table.space_config)}`",
        f"- device `{c.device}` ({c.device_name or 'name not recorded'}), backend `{c.backend}`, "
        f"batch {c.batch_size}, precision {c.precision}, input {list(c.input_shape)}",
        f"- per-op LUT: {len(table.ops)} (decision, choice) entries, fixed parts "
        + ", ".join(f"{e.name} {e.median_ms:.3f} ms" for e in table.fixed),
    ]
    if keep:
        lines.append("- measurement context: " + ", ".join(f"{k}={v}" for k, v in sorted(keep.items())))
    return lines


def render(table: LatencyTable, report: FitReport, read: ReadResult) -> str:
    """The text of report.md."""
    model = report.model
    repeats = sum(1 for r in read.records if r.repeat == 1)
    blocks = len({r.block for r in read.records})
    lines = [
        f"# Latency profile: {table.space} on {table.conditions.device} ({table.conditions.backend})",
        "",
        *_context_lines(table),
        f"- samples: {len(read.records)} measurements in {blocks} blocks "
        f"({len(read.records) - repeats} networks, {repeats} measured twice for the noise floor); "
        f"{report.n_train} for training, {report.n_test} held out",
        f"- latency reading fitted: **{report.target}**, {model.target}; chosen as the reading with the lowest "
        "test-retest MAPE among the training networks' retests (the noise-floor rows below show every reading, all retests)",
    ]
    if read.problems:
        lines += ["", "Problems in the samples files (those lines were skipped):", ""]
        lines += [f"- {p}" for p in read.problems]
    lines += [
        "",
        "## Latency models compared",
        "",
        "Every model is fitted on the training split only (MACs and params: one scale and offset each). "
        "The validation column is 5-fold cross-validation inside the training split; the stored model, "
        f"**{report.chosen}**, is the storable (linear in z) model with the lowest validation MAPE, refitted on "
        f"the whole training split (alpha {model.alpha:g}); the test split only reports. Models marked "
        "reference are not linear in z: the search's expected latency and RELAX's control variate need "
        "per-choice coefficients (lut.models).",
        "The noise-floor rows score the second measurement of the same networks against the first. They hold the "
        "measurement noise twice; a perfect model scored against one measurement would show about 1/√2 of their "
        "MAPE, and its rank correlation is capped by that noise as well.",
        f"Signal against noise: the networks' latencies spread by {100 * report.spread:.1f}% (std / mean); one "
        "measurement's error is about "
        + ("n/a (no retest)" if report.noise is None else f"{report.noise.mape / 2**0.5:.1f}%")
        + " (retest MAPE / √2).",
        "",
        fit_table(report),
        "",
        f"![predicted vs measured]({PLOT_PREDICTED})",
        "",
        f"![error histogram]({PLOT_ERRORS})",
        "",
        "## How many networks each model needs",
        "",
        "Every model refitted on random subsets of the training split (mean of 5 draws), scored on the same held-out nets.",
        "",
        learning_table(report.learning, networks_needed(report.learning)),
        "",
        f"![learning curve]({PLOT_LEARNING})",
        "",
    ]
    return "\n".join(lines)


def write_report(out: Path | str, table: LatencyTable, report: FitReport, read: ReadResult) -> Path:
    """Write report.md and the three PNGs into the profile directory; return report.md's path."""
    out = Path(out)
    _plot(out, report)
    return atomic_write(out / "report.md", render(table, report, read))
