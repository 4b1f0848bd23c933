"""report.md with PNG plots for a search run directory (E's format), for DARTS and proxyless results."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hwnas.errors import UsageError
from hwnas.report import write_report
from hwnas.report.compare import difference, mean_se, pareto_front, percentile_among, within
from hwnas.report.drawings import cell_edges, mbconv_layers
from hwnas.report.plots import among_random
from hwnas.report.runfiles import binned, tail_mean
from search_spaces import get_space

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY_PROXYLESS = {"widths": [8, 8, 8, 8, 8, 8, 8, 8, 16], "depths": [1, 2, 1, 1, 1, 1], "small_input": True,
                  "in_channels": 1, "resolution": 8, "num_classes": 10}


def _fake_run(path: Path, space_name: str, config: dict) -> Path:
    """A run directory written the way the search job (hwnas.run.search) writes one, probabilities per step included."""
    space = get_space(space_name, **config)
    rng = np.random.default_rng(0)
    path.mkdir()
    logits = {d.name: np.zeros(len(d.choices)) for d in space.decisions}
    with (path / "metrics.jsonl").open("w") as stream:
        for step in range(12):
            record = {"step": step, "phase": "warm-up" if step < 2 else "search", "train_loss": 2.3 - 0.1 * step,
                      "train_acc": 0.1 + 0.05 * step}
            if step >= 2:
                for d in space.decisions:
                    logits[d.name][0] += 0.3
                probabilities = {d.name: dict(zip(d.choices, (np.exp(logits[d.name]) / np.exp(logits[d.name]).sum()).tolist(),
                                                  strict=True)) for d in space.decisions}
                sampled = space.sample(rng).choices
                record.update({"val_acc": float(rng.uniform(0.1, 0.9)), "val_loss": 2.0, "sampled": sampled,
                               "sampled_latency_ms": float(rng.uniform(1, 3)), "expected_latency_ms": 2.0 - 0.05 * step,
                               "predicted_latency_ms": 2.1, "probabilities": probabilities})
            stream.write(json.dumps(record) + "\n")
    derived = space.derive({d.name: [1.0] + [0.0] * (len(d.choices) - 1) for d in space.decisions})
    document = {**derived.to_dict(), "search": {"estimator": "rebar", "latency_estimator": "relax", "steps": 10,
                                                "target_ms": 1.8, "measured_latency_ms": 1.7, "predicted_latency_ms": 1.75}}
    (path / "arch.json").write_text(json.dumps(document))
    (path / "config.json").write_text(json.dumps({"search": {"estimator": "rebar", "latency_target_ms": 1.8},
                                                  "data": {"dataset": "digits", "num_classes": 10}}))
    random = [{"choices": space.sample(rng).choices, "latency_ms": float(ms), "accuracy": float(acc)}
              for ms, acc in zip(rng.uniform(1.5, 2.0, 8), rng.uniform(0.3, 0.9, 8), strict=True)]
    (path / "standing.json").write_text(json.dumps({"derived": {"choices": derived.choices, "latency_ms": 1.7, "accuracy": 0.95},
                                                    "random": random, "tolerance": 0.05, "split": "val"}))
    return path


@pytest.mark.parametrize(("space", "config"), [("proxyless", TINY_PROXYLESS), ("darts", {"C": 4, "layers": 3})])
def test_report_writes_every_plot_as_a_png(tmp_path: Path, space: str, config: dict) -> None:
    run = _fake_run(tmp_path / "run", space, config)
    report = write_report(run)
    text = report.read_text()
    for name in ("probabilities.png", "latency.png", "architecture.png", "latency_accuracy.png", "training.png",
                 "standing.png"):
        assert f"]({name})" in text
        assert (run / name).read_bytes()[:8] == PNG_MAGIC
        with Image.open(run / name) as image:
            assert image.size[0] > 200 and image.size[1] > 100
    assert "**meets** the target" in text and "Not drawn" not in text
    assert "percentile among these 8 random networks (nearest in latency): 100" in text  # 0.95 beats every one
    values = [r["val_acc"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "val_acc" in r]
    assert f"Last 20% of the architecture steps: {np.mean(values[-2:]):.4f}" in text  # 10 steps: the last 2


def test_darts_edges_and_mbconv_layers_are_read_from_the_choices() -> None:
    space = get_space("darts", C=4, layers=3)
    arch = space.derive({d.name: [0.0] * (len(d.choices) - 1) + [1.0] for d in space.decisions})
    edges = cell_edges(arch.choices)
    assert set(edges) == {"normal", "reduce"} and all(len(e) == 8 for e in edges.values())  # 2 inputs x 4 nodes
    layers = mbconv_layers({"stage1.layer1": "k5_e3", "stage2.layer2": "zero"})
    assert layers == [("stage1.layer1", 5, 3), ("stage2.layer2", None, None)]


@pytest.mark.slow
def test_a_run_of_the_real_search_loop_gets_a_report_naming_what_is_missing(tmp_path: Path) -> None:
    search = pytest.importorskip("hwnas.search")
    run = pytest.importorskip("hwnas.run")
    config = search.SearchConfig.from_flat(space="proxyless", space_config={k: v for k, v in TINY_PROXYLESS.items()
                                                                  if k not in ("in_channels", "resolution", "num_classes")},
                                           dataset="digits", data_limit=200, estimator="gdas", latency_estimator="none",
                                           steps=3, warmup_steps=1, batch_size=16, progress=False)
    run.run_search(config, tmp_path / "run", measure_final=False)
    text = write_report(tmp_path / "run").read_text()
    assert (tmp_path / "run" / "architecture.png").read_bytes()[:8] == PNG_MAGIC
    assert (tmp_path / "run" / "training.png").read_bytes()[:8] == PNG_MAGIC
    assert "Not drawn: metrics.jsonl lines carry no 'sampled_latency_ms'" in text


def test_a_folder_that_is_no_run_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a search run directory"):
        write_report(tmp_path)


def test_mean_se_and_difference_match_an_independent_computation() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.9, 0.02, 7).tolist(), rng.normal(0.88, 0.03, 11).tolist()
    ma, mb = mean_se(a), mean_se(b)
    assert ma.n == 7 and ma.mean == pytest.approx(np.mean(a))
    assert ma.se == pytest.approx(np.std(a, ddof=1) / np.sqrt(7))
    diff = difference(ma, mb)
    assert diff.value == pytest.approx(np.mean(a) - np.mean(b))
    assert diff.z == pytest.approx((np.mean(a) - np.mean(b)) / np.hypot(ma.se, mb.se))
    assert mean_se([0.5]).se == 0.0 and mean_se([]).n == 0


def test_percentile_counts_ties_half_and_the_band_is_relative() -> None:
    assert percentile_among(0.9, [0.8, 0.85, 0.9, 0.95]) == pytest.approx(62.5)
    assert percentile_among(1.0, [0.1, 0.2]) == 100.0 and percentile_among(0.0, [0.1]) == 0.0
    assert within(1.05, 1.0, 0.05) and not within(1.06, 1.0, 0.05) and within(0.95, 1.0, 0.05)


def test_pareto_front_is_the_set_no_point_dominates() -> None:
    rng = np.random.default_rng(0)
    points = [(float(x), float(y)) for x, y in rng.uniform(0, 1, (60, 2))] + [(0.5, 0.5), (0.5, 0.5)]
    front = pareto_front(points)
    brute = {p for p in points if not any(q[0] <= p[0] and q[1] > p[1] for q in points)}  # enumeration
    assert set(front) == brute and front == sorted(front)


def test_among_random_writes_a_png_with_the_front(tmp_path: Path) -> None:
    written = among_random([(1.0, 0.8), (1.2, 0.85), (1.1, 0.7)], {"derived": [(1.05, 0.9)]}, tmp_path / "a.png",
                           ylabel="accuracy", title="t", targets=[1.1])
    assert written is not None and written.read_bytes()[:8] == PNG_MAGIC
    assert among_random([], {"derived": []}, tmp_path / "b.png", ylabel="a", title="t") is None


def test_binned_curve_and_tail_mean_against_numpy() -> None:
    values = [float(v) for v in np.random.default_rng(1).uniform(0, 1, 23)]
    curve = binned(values, 10)
    edges = [round(i * 23 / 10) for i in range(11)]
    assert curve == pytest.approx([np.mean(values[a:b]) for a, b in zip(edges, edges[1:], strict=False)])
    assert binned(values[:3], 10) == pytest.approx(values[:3])
    assert tail_mean(values) == pytest.approx(np.mean(values[-5:]))  # ceil(0.2 * 23) = 5
    assert tail_mean([]) is None and tail_mean([0.3]) == pytest.approx(0.3)


def test_a_difference_with_an_empty_group_is_no_number() -> None:
    diff = difference(mean_se([0.7, 0.8]), mean_se([]))
    assert math.isnan(diff.z) and str(diff) == "-"
    assert str(difference(mean_se([0.8, 0.8]), mean_se([0.8]))).endswith("(+0.0 SE)")
