"""A search started from another search's warm-up (`--warmup-from`) is the search that trained the warm-up
itself, bit for bit, across estimators; and a warm-up that is not the one it would train is refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hwnas.datasets import DataSplits, load_dataset
from hwnas.errors import UsageError
from hwnas.run import run_search
from hwnas.search import SearchConfig
from hwnas.search.warmstart import WARMUP_FILE

CELLS = {"parameterization": "edges", "C": 2, "layers": 3}
BLOCKS = {"small_input": True, "widths": [4, 4, 4, 4, 8, 8, 8, 8, 16], "depths": [1, 1, 1, 1, 1, 1], "dropout": 0.2}


@pytest.fixture(scope="module")
def digits() -> DataSplits:
    return load_dataset("digits", limit=240, seed=0)


def _config(space: str, estimator: str, **changes: object) -> SearchConfig:
    base = dict(space=space, space_config=CELLS if space == "darts" else BLOCKS, dataset="digits", estimator=estimator,
                latency_estimator="none", steps=3, warmup_steps=4, batch_size=8, progress=False,
                supernet_rule="network" if space == "darts" else "depth")
    return SearchConfig.from_flat(**{**base, **changes})  # type: ignore[arg-type]


def _search_rows(run: Path, first: int) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in ("seconds", "phases")} for row in rows if row["step"] >= first]


@pytest.mark.parametrize(("space", "source", "target", "changes"), [
    ("darts", "gdas", "egs", {}),
    ("darts", "gdas", "darts", {"darts_order": "amended", "arch_lr": 0.2}),
    ("proxyless", "gdas", "reinforce", {"arch_batch_size": 4}),  # dropout 0.2: the warm-up draws random numbers
])
def test_a_shared_warmup_continues_exactly_as_the_search_that_trained_its_own(
        tmp_path: Path, digits: DataSplits, space: str, source: str, target: str, changes: dict) -> None:
    run_search(_config(space, source), tmp_path / "source", data=digits, measure_final=False)
    warmup = tmp_path / "source" / WARMUP_FILE
    assert torch.load(warmup, weights_only=True)["step"] == 4

    own = run_search(_config(space, target, **changes), tmp_path / "own", data=digits, measure_final=False)
    shared = run_search(_config(space, target, warmup_from=str(warmup), **changes), tmp_path / "shared",
                        data=digits, measure_final=False)

    assert _search_rows(tmp_path / "shared", 0) == _search_rows(tmp_path / "own", 4)  # no warm-up rows, the rest equal
    assert shared.probabilities == own.probabilities and shared.arch.choices == own.arch.choices
    own_weights, shared_weights = own.supernet.state_dict(), shared.supernet.state_dict()
    assert all(torch.equal(own_weights[k], shared_weights[k]) for k in own_weights)
    assert not (tmp_path / "shared" / WARMUP_FILE).exists()  # it trained no warm-up of its own
    saved = json.loads((tmp_path / "shared" / "config.json").read_text())["search"]
    assert saved["loop"]["warmup_from"] == str(warmup)


def test_a_warmup_of_other_weight_settings_is_refused_before_the_run_folder_is_written(
        tmp_path: Path, digits: DataSplits) -> None:
    run_search(_config("darts", "gdas"), tmp_path / "source", data=digits, measure_final=False)
    warmup = str(tmp_path / "source" / WARMUP_FILE)
    refusals = [
        ({"seed": 1}, "seed = 0"),
        ({"w_lr": 0.1}, "w_lr = 0.05"),
        ({"steps": 5}, "steps = 3"),  # the weight learning rate's cosine spans warm-up and search
        ({"warmup_steps": 3}, "warmup = 4"),
        ({"supernet_rule": "uniform"}, "rule = 'network'"),
        ({"supernet_rule": "sample"}, "supernet rule is `sample`"),
    ]
    for number, (changes, message) in enumerate(refusals):
        out = tmp_path / f"refused{number}"
        with pytest.raises(UsageError, match=message):
            run_search(_config("darts", "gdas", warmup_from=warmup, **changes), out, data=digits, measure_final=False)
        assert not (out / "config.json").exists()
    for missing in (tmp_path / "none.pt", tmp_path / "source"):  # absent, or a folder: named, no resume hint
        with pytest.raises(UsageError, match="is not a regular file; give the warmup.pt"):
            run_search(_config("darts", "gdas", warmup_from=str(missing)), tmp_path / "y", data=digits, measure_final=False)
    with pytest.raises(UsageError, match="is not a warm-up file"):
        run_search(_config("darts", "gdas", warmup_from=str(tmp_path / "source" / "checkpoint.pt")), tmp_path / "x",
                   data=digits, measure_final=False)


def test_a_search_under_the_sample_rule_writes_no_warmup(tmp_path: Path, digits: DataSplits) -> None:
    run_search(_config("darts", "gdas", supernet_rule="sample"), tmp_path / "run", data=digits, measure_final=False)
    assert (tmp_path / "run" / "checkpoint.pt").exists() and not (tmp_path / "run" / WARMUP_FILE).exists()
