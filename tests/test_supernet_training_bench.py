"""The supernet-training benchmarks run end to end: benchmarks/supernet_training.py on the DARTS edge space records,
beside the accuracy of uniform every-edge paths, the accuracy of genotypes (what a search returns), for every rule
including `network`, and a stopped run continues from its results file; benchmarks/path_diversity.py trains fixed
and fresh genotypes and refuses a negative count in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmark_scripts import BENCHMARKS


def test_darts_run_records_genotype_accuracy_and_continues(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    command = [sys.executable, str(BENCHMARKS / "supernet_training.py"), "--task", "cluttered", "--space", "darts",
               "--steps", "4", "--checkpoints", "2", "4", "--seeds", "0", "--eval-archs", "2", "--eval-batches", "1",
               "--json", str(results)]
    first = subprocess.run([*command, "--variants", "shared-network"], capture_output=True, text=True, check=True)
    assert "net acc@4" in first.stdout and "shared-network" in first.stdout
    runs = json.loads(results.read_text())["runs"]
    assert set(runs) == {"shared-network"}
    for point in runs["shared-network"]["0"]["curve"].values():
        assert 0.0 <= point["net_acc"] <= 1.0 and 0.0 <= point["acc"] <= 1.0 and point["loss"] > 0
    kept = runs["shared-network"]["0"]
    second = subprocess.run([*command, "--variants", "shared-network,shared-uniform"], capture_output=True, text=True, check=True)
    runs = json.loads(results.read_text())["runs"]
    assert runs["shared-network"]["0"] == kept and "shared-uniform" in runs  # the finished run is not redone
    assert "Δacc@4 vs shared-network" in second.stdout


def test_path_diversity_runs_fixed_and_fresh_genotypes(tmp_path: Path) -> None:
    results = tmp_path / "diversity.json"
    command = [sys.executable, str(BENCHMARKS / "path_diversity.py"), "--paths", "1", "0", "--seeds", "0", "--steps", "4",
               "--checkpoints", "2", "4", "--eval-batches", "1", "--json", str(results)]
    printed = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert "1 fixed genotype " in printed and "fresh genotype every step" in printed and "Δacc@4 vs 1 fixed genotype" in printed
    runs = json.loads(results.read_text())["runs"]
    assert set(runs) == {"1", "0"} and all(set(runs[k]["0"]["curve"]) == {"2", "4"} for k in runs)
    bad = subprocess.run([*command[:2], "--paths", "-1"], capture_output=True, text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
