"""Golden test: every named architecture, edge by edge (layer by layer), against
its source listing.

The listings below are independent literals transcribed from the sources
(docs/design.md#63-published-architectures names them); they are not read from
`search_spaces/data/`. A parameter count cannot catch a swapped input (GDAS_V1's
last reduction op has the same count from input 1 or 2), so each edge is compared.
"""

from __future__ import annotations

import pytest

from search_spaces import get_space, list_named_architectures, named_architecture

# DARTS genotypes: per node 2..5, two (op, input) pairs; inputs 0, 1 are the previous cells.
DARTS_GENOTYPES = {
    # Liu, Simonyan, Yang, DARTS (ICLR 2019), quark0/darts cnn/genotypes.py DARTS_V1 (first order).
    "darts_v1": {
        "normal": [("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
                   ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
        "reduce": [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
                   ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)],
    },
    # Same source, DARTS_V2 (second order).
    "darts_v2": {
        "normal": [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
                   ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
        "reduce": [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
                   ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
    },
    # Dong, Yang, GDAS (CVPR 2019): the author's D-X-Y/AutoDL-Projects
    # xautodl/nas_infer_model/DXYs/genotypes.py GDAS_V1. The reduction cell ends
    # with input 1 (a third-party copy has input 2; the author's files agree on 1).
    "gdas_v1": {
        "normal": [("skip_connect", 0), ("skip_connect", 1), ("skip_connect", 0), ("sep_conv_5x5", 2),
                   ("sep_conv_3x3", 3), ("skip_connect", 0), ("sep_conv_5x5", 4), ("sep_conv_3x3", 3)],
        "reduce": [("sep_conv_5x5", 0), ("sep_conv_3x3", 1), ("sep_conv_5x5", 2), ("sep_conv_5x5", 1),
                   ("dil_conv_5x5", 2), ("sep_conv_3x3", 1), ("sep_conv_5x5", 0), ("sep_conv_5x5", 1)],
    },
}

# ProxylessNAS-space networks: per stage, the first layer then the rest.
PROXYLESS_LAYERS = {
    # Cai, Zhu, Han, ProxylessNAS (ICLR 2019), the released proxyless_gpu network config.
    "proxyless_gpu": [
        ["k5_e3", "zero", "zero", "zero"],
        ["k7_e3", "zero", "zero", "k3_e3"],
        ["k7_e6", "zero", "zero", "k5_e3"],
        ["k5_e6", "zero", "k3_e3", "k5_e3"],
        ["k7_e6", "k7_e6", "k7_e6", "k5_e6"],
        ["k7_e6"],
    ],
    # Vahdat et al., UNAS (CVPR 2020), Table 3 (9.8 ms).
    "unas_gpu": [
        ["k5_e3", "k3_e3", "zero", "zero"],
        ["k7_e3", "zero", "zero", "zero"],
        ["k7_e3", "k3_e3", "k3_e3", "k3_e3"],
        ["k5_e3", "k3_e3", "k3_e3", "k3_e3"],
        ["k7_e6", "k7_e3", "k7_e3", "k7_e3"],
        ["k7_e6"],
    ],
    # Sandler et al., MobileNetV2 (CVPR 2018), Table 2 / torchvision's t,c,n,s table:
    # n = 2,3,4,3,3,1 expansion-6 3x3 blocks after the first (t = 1) block.
    "mobilenet_v2": [["k3_e6"] * n for n in (2, 3, 4, 3, 3, 1)],
}


def test_every_named_architecture_has_a_golden_listing() -> None:
    assert sorted(list_named_architectures()) == sorted([*DARTS_GENOTYPES, *PROXYLESS_LAYERS])


@pytest.mark.parametrize("name", sorted(DARTS_GENOTYPES))
def test_darts_genotype_edge_by_edge(name: str) -> None:
    arch = named_architecture(name)
    space = get_space(arch.space, **arch.config)
    assert space.parameterization == "edges"
    for cell, genotype in DARTS_GENOTYPES[name].items():
        stored = arch.extra["genotype"][cell]
        assert [tuple(pair) for pair in stored] == genotype, f"{name} {cell}: stored genotype differs from the source"
        for k, node in enumerate((2, 3, 4, 5)):
            expected = dict((source, op) for op, source in genotype[2 * k: 2 * k + 2])
            assert len(expected) == 2, f"{name} {cell} node {node}: two ops from one input"
            for source in range(node):
                got = arch.choices[f"{cell}.node{node}.edge{source}"]
                assert got == expected.get(source, "none"), (
                    f"{name} {cell}.node{node}.edge{source} is {got!r}; the source has {expected.get(source, 'none')!r}"
                )
    assert len(arch.choices) == len(space.decisions)


@pytest.mark.parametrize("name", sorted(PROXYLESS_LAYERS))
def test_proxyless_space_network_layer_by_layer(name: str) -> None:
    arch = named_architecture(name)
    space = get_space(arch.space, **arch.config)
    stages = PROXYLESS_LAYERS[name]
    assert list(space.depths) == [len(layers) for layers in stages]
    expected = {f"stage{s + 1}.layer{i + 1}": choice for s, layers in enumerate(stages) for i, choice in enumerate(layers)}
    assert arch.choices == expected
