"""The search-space contract other packages code against: registry, validation
messages, encoding, derivation, supernet execution (only non-zero choices run,
gradients reach the weights), per-op items that add up to the network."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from search_spaces import (
    Architecture,
    ArchitectureError,
    count_params,
    get_space,
    list_named_architectures,
    list_spaces,
    load_architecture,
    named_architecture,
    space_for,
)
from search_spaces.choice import Choice

TINY_PROXYLESS = {"widths": [8, 8, 8, 8, 16, 16, 16, 16, 32], "resolution": 32, "small_input": True, "num_classes": 10}
TINY_DARTS = {"C": 4, "layers": 3, "resolution": 16}


def test_registry_lists_spaces_and_named_architectures() -> None:
    assert {"proxyless", "darts"} <= set(list_spaces())
    assert {"proxyless_gpu", "unas_gpu", "mobilenet_v2", "darts_v1", "darts_v2", "gdas_v1"} <= set(
        list_named_architectures()
    )
    for name in list_named_architectures():
        arch = named_architecture(name)
        space_for(arch).validate(arch)
        assert arch.extra["name"] == name and arch.extra["source"], f"{name} must cite its source"


def test_unknown_names_say_what_exists(tmp_path) -> None:
    with pytest.raises(ArchitectureError, match="proxyless"):
        get_space("nope")
    with pytest.raises(ArchitectureError, match="darts_v2.*not found|not found"):
        load_architecture(str(tmp_path / "missing.json"))
    with pytest.raises(ArchitectureError, match="allowed:.*widths"):
        get_space("proxyless", width="gpu")


def test_validate_names_decision_and_allowed_choices() -> None:
    space = get_space("proxyless", **TINY_PROXYLESS)
    arch = space.sample(np.random.default_rng(0))
    bad = Architecture(arch.space, arch.space_version, arch.config, {**arch.choices, "stage2.layer1": "zero"})
    with pytest.raises(ArchitectureError, match=r"stage2\.layer1.*allowed: k3_e3, k3_e6, k5_e3, k5_e6, k7_e3, k7_e6$"):
        space.validate(bad)
    missing = Architecture(arch.space, arch.space_version, arch.config, {})
    with pytest.raises(ArchitectureError, match="stage1.layer1"):
        space.validate(missing)


def test_decision_counts_match_the_papers() -> None:
    proxyless = get_space("proxyless")
    assert [len(d.choices) for d in proxyless.decisions].count(7) == 15
    assert [len(d.choices) for d in proxyless.decisions].count(6) == 6
    assert len(get_space("darts").decisions) == 2 * 14 and len(get_space("darts").decisions[0].choices) == 8
    factorized = get_space("darts", parameterization="factorized")
    assert len(factorized.decisions) == 2 * 4 * 4 and "sep_conv_7x7" in factorized.decisions[-1].choices
    assert len(get_space("darts", parameterization="s1").decisions) == 2 * 8
    s2 = get_space("darts", parameterization="s2")
    assert len(s2.decisions) == 20 * 8 and s2.decisions[0].name == "cell00.node2.edge0"
    assert len(get_space("darts", fixed_reduction=True).decisions) == 14


def test_architecture_json_keeps_extra_keys(tmp_path) -> None:
    arch = named_architecture("darts_v2")
    saved = Architecture.load(arch.save(tmp_path / "a.json"))
    assert saved.extra["genotype"] == arch.extra["genotype"]
    assert json.loads((tmp_path / "a.json").read_text())["space_version"] == 1
    assert len({arch, saved, named_architecture("darts_v1")}) == 2  # hashable, equal when equal


def test_genotype_matches_named_file() -> None:
    arch = named_architecture("darts_v2")
    space = space_for(arch)
    normal = [tuple(p) for p in arch.extra["genotype"]["normal"]]
    reduce = [tuple(p) for p in arch.extra["genotype"]["reduce"]]
    assert space.from_genotype(normal, reduce).choices == arch.choices


def test_edge_derivation_keeps_two_strongest_non_none_edges() -> None:
    space = get_space("darts", **TINY_DARTS)
    rng = np.random.default_rng(0)
    probabilities = {d.name: rng.dirichlet(np.ones(len(d.choices))) for d in space.decisions}
    for j in range(3):  # node 3: make edge 2 and 0 the strongest via sep_conv_5x5 / max_pool
        probabilities[f"normal.node3.edge{j}"] = np.full(8, 0.01)
    probabilities["normal.node3.edge2"][5] = 0.9
    probabilities["normal.node3.edge0"][1] = 0.5
    probabilities["normal.node3.edge1"][0] = 0.99  # `none` never counts
    arch = space.derive(probabilities)
    assert [arch.choices[f"normal.node3.edge{j}"] for j in range(3)] == ["max_pool_3x3", "none", "sep_conv_5x5"]
    for node in (2, 3, 4, 5):
        kept = [j for j in range(node) if arch.choices[f"reduce.node{node}.edge{j}"] != "none"]
        assert len(kept) == 2


def _count_calls(network: nn.Module) -> dict[str, int]:
    calls: dict[str, int] = {}
    for layer in network.modules():
        if isinstance(layer, Choice):
            for key, candidate in layer.candidates.items():
                def hook(*_, tag=f"{layer.decision}={key}") -> None:
                    calls[tag] = calls.get(tag, 0) + 1
                candidate.register_forward_hook(hook)
    return calls


def test_supernet_runs_only_nonzero_choices_and_passes_gradients() -> None:
    space = get_space("proxyless", **{**TINY_PROXYLESS, "depths": [2, 1, 1, 2, 1, 1], "resolution": 16})
    supernet = space.supernet()
    calls = _count_calls(supernet)
    arch = space.sample(np.random.default_rng(3))
    weights = {k: v.requires_grad_() for k, v in space.one_hot(arch).items()}
    supernet(torch.randn(1, 3, 16, 16), weights).sum().backward()
    assert set(calls) == {f"{k}={v}" for k, v in arch.choices.items()}
    # `zero` is the identity layer, so its weight gets a gradient too
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in weights.values())

    calls.clear()
    multi = {d.name: torch.tensor([0.5, 0.0, 1.0, 0.0, 0.0, 0.0] + [0.0] * (len(d.choices) - 6)) for d in space.decisions}
    supernet(torch.randn(1, 3, 16, 16), multi)
    assert set(calls) == {f"{d.name}={c}" for d in space.decisions for c in ("k3_e3", "k5_e3")}

    calls.clear()
    soft = {d.name: torch.softmax(torch.randn(len(d.choices)), 0).requires_grad_() for d in space.decisions}
    supernet(torch.randn(1, 3, 16, 16), soft).sum().backward()
    assert len(calls) == sum(len(d.choices) for d in space.decisions)
    assert all(w.grad is not None for w in soft.values())


def test_factorized_supernet_gradients_reach_input_and_op_weights() -> None:
    space = get_space("darts", parameterization="factorized", **{**TINY_DARTS, "C": 2, "resolution": 8})
    supernet = space.supernet()
    weights = {d.name: torch.softmax(torch.randn(len(d.choices)), 0).requires_grad_() for d in space.decisions}
    supernet(torch.randn(1, 3, 8, 8), weights).sum().backward()
    assert all(w.grad is not None and torch.isfinite(w.grad).all() for w in weights.values())


def test_wrong_weight_shape_names_the_decision() -> None:
    space = get_space("proxyless", **TINY_PROXYLESS)
    weights = space.one_hot(space.sample(np.random.default_rng(0)))
    weights["stage2.layer2"] = torch.ones(3)
    with pytest.raises(ArchitectureError, match=r"stage2\.layer2.*\(7,\)"):
        space.supernet()(torch.randn(1, 3, 32, 32), weights)


@pytest.mark.parametrize(
    "name, config",
    [("proxyless", TINY_PROXYLESS), ("darts", TINY_DARTS), ("darts", {**TINY_DARTS, "parameterization": "s2"}),
     ("darts", {**TINY_DARTS, "network": "imagenet", "resolution": 32, "fixed_reduction": True})],
)
def test_op_items_add_up_to_the_network(name: str, config: dict) -> None:
    """The per-op items of the chosen path plus the fixed items are the whole
    network: same parameters, and every item runs at its recorded shape."""
    space = get_space(name, **config)
    arch = space.sample(np.random.default_rng(5))
    chosen = [i for i in space.op_items(2) if arch.choices[i.decision] == i.choice]
    fixed = space.fixed_items(2)
    assert all(i.decision is None for i in fixed)
    assert sum(count_params(i.module) for i in chosen + fixed) == count_params(space.build(arch))
    with torch.no_grad():
        for item in chosen + fixed:
            item.module.eval()(torch.randn(*item.input_shape))


def test_factorized_op_items_are_refused_with_a_reason() -> None:
    with pytest.raises(ArchitectureError, match="fixed edges"):
        get_space("darts", parameterization="factorized").op_items(1)


def test_signature_is_stable_and_config_sensitive() -> None:
    assert get_space("darts").signature() == get_space("darts", C=36).signature()
    assert get_space("darts").signature() != get_space("darts", C=16).signature()
