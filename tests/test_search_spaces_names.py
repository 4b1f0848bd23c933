"""Names as the papers write them (issue #13 item 8): `DARTS_V2`, `GDAS_V1`,
`REBAR`, `RELAX`, `ORT` are accepted wherever a name is taken, and mean the
same as the lower-case names the registries hold."""

from __future__ import annotations

import json

import pytest

from hwnas.cli import build_parser, main
from hwnas.cli.search import config_from_args
from hwnas.models import resolve_model
from profilers import get_backend
from search_spaces import (
    ArchitectureError,
    count_params,
    get_space,
    list_named_architectures,
    load_architecture,
    named_architecture,
    space_for,
)


@pytest.mark.parametrize("name", ["DARTS_V2", "Darts_V2", "GDAS_V1", "ProxyLess_GPU", "MobileNet_V2", "UNAS_GPU"])
def test_named_architectures_ignore_case(name: str) -> None:
    assert named_architecture(name) == named_architecture(name.lower())
    assert load_architecture(name) == named_architecture(name.lower())


def test_spaces_ignore_case_and_unknown_names_still_fail() -> None:
    assert get_space("DARTS", C=4, layers=5).signature() == get_space("darts", C=4, layers=5).signature()
    assert get_space("Proxyless").name == "proxyless"
    with pytest.raises(ArchitectureError, match="unknown search space 'nasnet'"):
        get_space("nasnet")
    with pytest.raises(ArchitectureError, match="no named architecture 'DARTS_V3'"):
        named_architecture("DARTS_V3")
    assert all(name == name.lower() for name in list_named_architectures())


def test_a_file_whose_space_is_spelled_otherwise_loads(tmp_path) -> None:
    document = named_architecture("gdas_v1").to_dict() | {"space": "DARTS"}
    path = tmp_path / "gdas.json"
    path.write_text(json.dumps(document))
    arch = load_architecture(str(path))
    assert arch.space == "darts" and count_params(space_for(arch).build(arch)) > 0


def test_arch_show_takes_the_papers_spelling(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["arch", "show", "DARTS_V2", "--json"]) == 0
    upper = json.loads(capsys.readouterr().out)
    assert main(["arch", "show", "darts_v2", "--json"]) == 0
    lower = json.loads(capsys.readouterr().out)
    assert upper["params"] == lower["params"] and upper["macs"] == lower["macs"]
    assert main(["arch", "sample", "--space", "DARTS", "--seed", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["space"] == "darts"


def test_profile_model_takes_a_named_architecture_in_any_case() -> None:
    resolved = resolve_model("GDAS_V1", batch_size=1)
    assert resolved.source == "architecture"


def test_backends_and_estimators_ignore_case() -> None:
    assert get_backend("EAGER") is get_backend("eager")
    parser = build_parser()
    args = parser.parse_args(["search", "--space", "DARTS", "--estimator", "REBAR", "--latency-estimator", "RELAX",
                              "--backend", "ORT"])
    flat = config_from_args(args).flat()
    assert (flat["space"], flat["estimator"], flat["latency_estimator"], flat["latency_backend"]) == ("darts", "rebar", "relax", "ort")
    args = parser.parse_args(["profile", "--backend", "Eager,ORT", "--space", "Proxyless"])
    assert (args.backend, args.space) == ("eager,ort", "proxyless")
