"""`SearchSpace.sample_network`: a uniform draw among the networks a search can return, which is what a device
profile measures and what a searched network is compared with. In the DARTS edge space that is a uniform genotype
(per node two of its edges, each with one of the non-`none` ops), checked here against the exact distribution by
a chi-square test; elsewhere every architecture is derivable and the draw is `sample`'s, stream included, so
profiles made before keep their plan."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from lut.errors import LutError
from lut.profile import check_manifest, manifest_of, planned_arch, resolve_settings
from search_spaces import get_space

EDGES = {"parameterization": "edges", "C": 4, "layers": 3, "resolution": 16}
DRAWS = 4000


def _node_edges(space, arch, prefix: str, node: int) -> dict[int, str]:  # noqa: ANN001
    return {j: arch.choices[f"{prefix}.node{node}.edge{j}"] for j in space.edge_sources(node)}


def test_an_edge_space_draw_is_a_uniform_genotype() -> None:
    space = get_space("darts", **EDGES)
    ops = [op for op in space.ops if op != "none"]
    rng = np.random.default_rng(0)
    pairs: dict[int, Counter] = {node: Counter() for node in (2, 3, 4, 5)}
    chosen_ops: Counter = Counter()
    for _ in range(DRAWS):
        arch = space.sample_network(rng)
        for node in (2, 3, 4, 5):
            edges = _node_edges(space, arch, "normal", node)
            kept = tuple(sorted(j for j, op in edges.items() if op != "none"))
            assert len(kept) == 2, f"node {node} keeps {kept}"  # every draw is a genotype
            pairs[node][kept] += 1
            chosen_ops.update(edges[j] for j in kept)
    for node, counts in pairs.items():
        possible = list(itertools.combinations(range(node), 2))
        observed = [counts[p] for p in possible]
        assert sum(observed) == DRAWS
        if len(possible) > 1:  # node 2 has two edges: both, always
            assert stats.chisquare(observed).pvalue > 1e-3, (node, observed)  # uniform over the C(node, 2) pairs
    assert set(chosen_ops) == set(ops)
    assert stats.chisquare([chosen_ops[op] for op in ops]).pvalue > 1e-3, chosen_ops


def test_uniform_paths_are_not_genotypes_so_the_draw_matters() -> None:
    """The reason for `sample_network`: most of `sample`'s draws keep more than two edges at some node."""
    space = get_space("darts", **EDGES)
    rng = np.random.default_rng(0)
    wider = sum(any(sum(op != "none" for op in _node_edges(space, space.sample(rng), "normal", n).values()) != 2
                    for n in (2, 3, 4, 5)) for _ in range(200))
    assert wider > 190


@pytest.mark.parametrize(("name", "config"), [
    ("proxyless", {}),
    ("darts", {"parameterization": "factorized", "C": 4, "layers": 3, "resolution": 16}),
    ("darts", {"parameterization": "s1", "C": 4, "layers": 3, "resolution": 16}),
])
def test_where_everything_is_derivable_the_draw_is_samples(name: str, config: dict) -> None:
    space = get_space(name, **config)
    assert space.network_draw == "uniform"
    for seed in range(5):
        assert space.sample_network(np.random.default_rng(seed)) == space.sample(np.random.default_rng(seed))


def test_a_profile_plans_genotypes_and_refuses_to_resume_an_older_plan(tmp_path: Path) -> None:
    space = get_space("darts", **EDGES)
    assert space.network_draw == "genotype"
    assert planned_arch(space, 0, 3) == space.sample_network(np.random.default_rng([0, 3]))
    settings = resolve_settings(space="darts", space_options=EDGES, device="cpu", samples=20, out=tmp_path)
    manifest = manifest_of(settings, space)
    older = {k: v for k, v in manifest.items() if k != "networks"}  # written when the plan was `sample`'s
    (tmp_path / "profile.json").write_text(json.dumps(older))
    with pytest.raises(LutError, match="^networks differs: .*networks='uniform', this run asks 'genotype'.*remove it"):
        check_manifest(tmp_path, manifest)


def test_an_older_proxyless_profile_still_resumes(tmp_path: Path) -> None:
    space = get_space("proxyless")
    settings = resolve_settings(device="cpu", samples=20, out=tmp_path)
    manifest = manifest_of(settings, space)
    (tmp_path / "profile.json").write_text(json.dumps({k: v for k, v in manifest.items() if k != "networks"}))
    check_manifest(tmp_path, manifest)
