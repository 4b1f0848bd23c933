"""The report's time-series and scatter plots, as PNG files (matplotlib's Agg canvas, no pyplot state).

Each function returns the written path, or None when the run lacks the
fields it needs (`MISSING` names them for the report).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from hwnas.report.compare import pareto_front
from hwnas.report.runfiles import RunFiles

MAX_DECISION_PANELS = 12
"""Up to this many decisions get one line panel each; more are drawn as one heatmap (a figure of
dozens of axes takes matplotlib tens of seconds to render)."""
DPI = 110


def save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def _choice_probabilities(values: list[dict], decision: str) -> dict[str, list[float]]:
    """{choice: [p at each logged step]}; probabilities are {choice: p} (or a plain list)."""
    last = values[-1][decision]
    names = list(last) if isinstance(last, dict) else [str(i) for i in range(len(last))]
    return {name: [(p[decision][name] if isinstance(p[decision], dict) else p[decision][i]) for p in values]
            for i, name in enumerate(names)}


def probabilities(run: RunFiles, path: Path) -> Path | None:
    """The probability of each choice of each decision against the step."""
    steps, values = run.series("probabilities")
    if not steps:
        return None
    if len(values[-1]) > MAX_DECISION_PANELS:
        return _probability_heatmap(steps, values, path)
    decisions = list(values[-1])
    columns = min(6, len(decisions))
    rows = math.ceil(len(decisions) / columns)
    figure = Figure(figsize=(2.6 * columns, 1.9 * rows + 0.6))
    axes = figure.subplots(rows, columns, squeeze=False, sharex=True, sharey=True)
    colours: dict[str, str] = {}  # one colour per choice name in every panel, one legend for all
    palette = [f"C{i}" for i in range(10)] + ["#444", "#999", "#b5838d", "#6d597a"]
    for ax, decision in zip(axes.flat, decisions):
        for name, ys in _choice_probabilities(values, decision).items():
            colour = colours.setdefault(name, palette[len(colours) % len(palette)])
            ax.plot(steps, ys, color=colour, linewidth=1.1)
        ax.set_title(decision, fontsize=7)
        ax.set_ylim(0, 1)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(decisions):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=colour, label=name) for name, colour in colours.items()]
    figure.legend(handles=handles, loc="lower center", ncol=min(len(handles), 8), fontsize=7, frameon=False,
                  bbox_to_anchor=(0.5, -0.06))
    figure.suptitle("probability of each choice per decision", fontsize=10)
    figure.supxlabel("step", fontsize=8)
    return save(figure, path)


def _probability_heatmap(steps: list[int], values: list[dict], path: Path) -> Path:
    """One block of rows per decision (one row per choice), one column per logged step, colour = probability."""
    rows, starts, longest = [], [], []
    for decision in values[-1]:
        starts.append(len(rows))
        choices = _choice_probabilities(values, decision)
        rows.extend(choices.values())
        longest = max(longest, list(choices), key=len)
    figure = Figure(figsize=(9, max(4.0, 0.06 * len(rows) + 1.5)))
    ax = figure.subplots()
    image = ax.imshow(rows, aspect="auto", interpolation="nearest", cmap="magma", vmin=0, vmax=1,
                      extent=(steps[0] - 0.5, steps[-1] + 0.5, len(rows) - 0.5, -0.5))
    ends = [*starts[1:], len(rows)]
    for boundary in starts[1:]:
        ax.axhline(boundary - 0.5, color="white", linewidth=0.5)
    ax.set_yticks([(a + b - 1) / 2 for a, b in zip(starts, ends, strict=True)], list(values[-1]), fontsize=6)
    ax.set_xlabel("step")
    figure.colorbar(image, ax=ax, label="probability", fraction=0.03)
    ax.set_title(f"probability of each choice per decision\n(rows of a block, top to bottom: {', '.join(longest)})",
                 fontsize=9)
    return save(figure, path)


def latency(run: RunFiles, path: Path) -> Path | None:
    """Sampled (measured), expected and predicted latency (ms) per step, with the target."""
    series = {key: run.series(key) for key in ("sampled_latency_ms", "expected_latency_ms", "predicted_latency_ms")}
    if not any(steps for steps, _ in series.values()):
        return None
    figure = Figure(figsize=(7, 3.6))
    ax = figure.subplots()
    steps, values = series["sampled_latency_ms"]
    if steps:
        ax.scatter(steps, values, s=8, alpha=0.5, label="sampled architecture, measured")
    for key, label in (("expected_latency_ms", "expected under p (surrogate)"), ("predicted_latency_ms", "sampled, predicted")):
        steps, values = series[key]
        if steps:
            ax.plot(steps, values, linewidth=1.3, label=label)
    if run.target_ms is not None:
        ax.axhline(run.target_ms, color="black", linestyle="--", linewidth=1, label=f"target {run.target_ms:.3g} ms")
    ax.set_xlabel("step")
    ax.set_ylabel("latency (ms)")
    ax.legend(fontsize=7)
    ax.set_title("latency against target", fontsize=10)
    return save(figure, path)


def latency_vs_accuracy(run: RunFiles, path: Path) -> Path | None:
    """Each step's sampled architecture: measured latency (ms) against its search-val batch accuracy."""
    rows = [(r["step"], r["sampled_latency_ms"], r["val_acc"]) for r in run.metrics
            if r.get("sampled_latency_ms") is not None and r.get("val_acc") is not None]
    if not rows:
        return None
    figure = Figure(figsize=(5.6, 4.2))
    ax = figure.subplots()
    points = ax.scatter([r[1] for r in rows], [r[2] for r in rows], c=[r[0] for r in rows], s=12, cmap="viridis")
    figure.colorbar(points, ax=ax, label="step")
    if run.target_ms is not None:
        ax.axvline(run.target_ms, color="black", linestyle="--", linewidth=1, label="target")
        ax.legend(fontsize=7)
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("accuracy on the search-val batch")
    ax.set_title("sampled architectures", fontsize=10)
    return save(figure, path)


def curves(run: RunFiles, path: Path) -> Path | None:
    """Training loss and search-val accuracy per step (context for the other plots)."""
    loss_steps, losses = run.series("train_loss")
    acc_steps, accs = run.series("val_acc")
    if not loss_steps:
        return None
    figure = Figure(figsize=(7, 3.2))
    ax = figure.subplots()
    ax.plot(loss_steps, losses, linewidth=1, label="search-train loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats)")
    if acc_steps:
        twin = ax.twinx()
        twin.plot(acc_steps, accs, color="tab:orange", linewidth=1, alpha=0.7, label="search-val accuracy")
        twin.set_ylabel("accuracy")
        twin.set_ylim(0, 1)
    ax.set_title("supernet training", fontsize=10)
    return save(figure, path)


MISSING = {
    probabilities: "metrics.jsonl lines carry no 'probabilities' ({decision: {choice: p}} after each step)",
    latency: "metrics.jsonl lines carry no 'sampled_latency_ms' / 'expected_latency_ms' (no latency term in this run)",
    latency_vs_accuracy: "metrics.jsonl lines carry no 'sampled_latency_ms' with 'val_acc' (no sampled, measured architectures)",
    curves: "metrics.jsonl lines carry no 'train_loss'",
}


def among_random(
    random: Sequence[tuple[float, float]],
    found: Mapping[str, Sequence[tuple[float, float]]],
    path: Path,
    *,
    ylabel: str,
    title: str,
    targets: Sequence[float] = (),
) -> Path | None:
    """Accuracy against measured latency: random networks (grey) with their Pareto front, and the
    found networks on top, one colour per group (a latency target, or "derived"). Points are (ms, accuracy)."""
    if not random and not any(found.values()):
        return None
    figure = Figure(figsize=(6.4, 4.4))
    ax = figure.subplots()
    if random:
        ax.scatter([p[0] for p in random], [p[1] for p in random], s=14, color="#999", alpha=0.7,
                   label=f"random networks ({len(random)})")
        front = pareto_front(random)
        ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="#555", linewidth=1,
                label="random networks' Pareto front")
    for index, (label, points) in enumerate(found.items()):
        if points:
            ax.scatter([p[0] for p in points], [p[1] for p in points], s=46, marker="*", color=f"C{index}",
                       edgecolor="black", linewidth=0.4, zorder=3, label=label)
    for index, target in enumerate(targets):
        ax.axvline(target, color=f"C{index}", linestyle=":", linewidth=1)
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return save(figure, path)
