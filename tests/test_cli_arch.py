"""`hwnas arch list | sample | show` through the real entry point."""

from __future__ import annotations

import json

import pytest

from hwnas.cli import main
from search_spaces import Architecture, get_space


def test_list_names_spaces_and_published_architectures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["arch", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("proxyless", "darts", "proxyless_gpu", "darts_v2", "gdas_v1"):
        assert name in out


def test_sample_writes_a_valid_architecture(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a.json"
    assert main(["arch", "sample", "--space", "darts", "--seed", "3", "--set", "parameterization=factorized",
                 "--out", str(path)]) == 0
    arch = Architecture.load(path)
    get_space("darts", parameterization="factorized").validate(arch)
    assert main(["arch", "sample", "--space", "darts", "--seed", "3", "--set", "parameterization=factorized"]) == 0
    assert json.loads(capsys.readouterr().out) == arch.to_dict()


def test_sample_in_the_darts_edge_space_is_a_genotype(tmp_path) -> None:
    """A search returns two inputs per node, so that is what `arch sample` draws (not one op on every edge)."""
    space = get_space("darts")
    for seed in range(5):
        path = tmp_path / f"a{seed}.json"
        assert main(["arch", "sample", "--space", "darts", "--seed", str(seed), "--out", str(path)]) == 0
        arch = Architecture.load(path)
        space.validate(arch)
        kept: dict[str, int] = {}
        for name, op in arch.choices.items():
            node = name.rsplit(".", 1)[0]
            kept[node] = kept.get(node, 0) + (op != "none")
        assert set(kept.values()) == {2}, kept


def test_show_json_has_integer_params_and_macs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["arch", "show", "proxyless_gpu", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["params"] == 7_119_848 and isinstance(report["macs"], int)
    assert 460e6 <= report["macs"] <= 470e6
    assert report["block_strings"][1] == ["ir_r1_k5_s2_e3_c32"]
    assert sum(row["params"] for row in report["layers"]) == report["params"]


def test_show_rebuilds_darts_for_another_dataset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["arch", "show", "darts_v2", "--dataset", "cifar10", "--channels", "16", "--layers", "8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["config"]["C"] == 16 and len([r for r in report["layers"] if r["layer"].startswith("cells.")]) == 8
    assert main(["arch", "show", "darts_v2", "--channels", "16"]) == 0
    assert "parameters" in capsys.readouterr().out


def test_show_unknown_architecture_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["arch", "show", "no_such_arch"]) == 2
    err = capsys.readouterr().err
    assert "darts_v2" in err and "not found" in err and err.count("\n") == 1
