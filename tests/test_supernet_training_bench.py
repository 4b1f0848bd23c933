"""benchmarks/supernet_training.py runs end to end on the DARTS edge space and records, beside the accuracy of
uniform every-edge paths, the accuracy of genotypes (what a search returns), for every rule including `network`;
a stopped run continues from its results file."""

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
