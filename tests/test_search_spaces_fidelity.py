"""Issue #13 (fidelity): the network built is the network the architecture names.

- a space refuses an architecture drawn with another configuration that
  changes what its choices mean (proxyless widths), in one line;
- architecture JSON stores the widths it was built with, not a preset name
  (old files with a preset name still load, resolved);
- supernet weights copy into a standalone network that has an auxiliary head;
- a standalone network holds only what its forward runs: every parameter gets
  a gradient from one forward/backward, so counts are of what runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from search_spaces import (
    ArchitectureError,
    count_params,
    get_space,
    load_architecture,
    named_architecture,
    space_for,
)
from search_spaces.proxyless import WIDTHS

GPU_WIDTHS = [40, 24, 32, 56, 112, 128, 256, 432, 1728]


# ---- item 4: a configuration mismatch is refused ---------------------------------------------
def test_build_refuses_an_architecture_of_other_widths_in_one_line() -> None:
    arch = named_architecture("proxyless_gpu")
    with pytest.raises(ArchitectureError) as error:
        get_space("proxyless").build(arch)
    message = str(error.value)
    assert "\n" not in message and "widths" in message and "40" in message and "32" in message
    assert count_params(get_space("proxyless", widths="gpu").build(arch)) == 7_119_848
    assert count_params(space_for(arch).build(arch)) == 7_119_848


def test_validate_compares_every_architecture_key() -> None:
    space = get_space("proxyless", widths="gpu")
    arch = space.sample(np.random.default_rng(0))
    with pytest.raises(ArchitectureError, match="widths"):
        get_space("proxyless", widths=[*GPU_WIDTHS[:-1], 1280]).validate(arch)
    no_none = get_space("darts", parameterization="edges", op_set="darts_no_none", C=4, layers=5)
    with_none = get_space("darts", parameterization="edges", op_set="darts", C=4, layers=5)
    with pytest.raises(ArchitectureError, match="op_set"):  # same decisions, choices a subset: only the config differs
        with_none.validate(no_none.sample(np.random.default_rng(1)))


def test_instantiation_keys_may_differ() -> None:
    """A genotype is evaluated in another network (DARTS: search C=16 x 8 cells,
    evaluation C=36 x 20, ImageNet C=48 x 14): such keys are not refused."""
    arch = named_architecture("darts_v2")
    network = get_space("darts", **{**arch.config, "network": "imagenet", "C": 48, "layers": 14,
                                    "num_classes": 1000, "resolution": 224}).build(arch)
    assert 4_600_000 < count_params(network) < 4_800_000
    small = get_space("proxyless", widths="gpu", resolution=32, small_input=True, num_classes=10)
    small.build(named_architecture("proxyless_gpu"))


# ---- item 5: resolved widths are stored -------------------------------------------------------
def test_architecture_json_stores_resolved_widths(tmp_path: Path) -> None:
    space = get_space("proxyless", widths="gpu")
    assert space.config["widths"] == GPU_WIDTHS == list(WIDTHS["gpu"])
    arch = space.sample(np.random.default_rng(0))
    path = arch.save(tmp_path / "a.json")
    assert json.loads(path.read_text())["config"]["widths"] == GPU_WIDTHS
    for name in ("proxyless_gpu", "unas_gpu", "mobilenet_v2"):
        stored = json.loads((Path(__file__).parents[1] / "search_spaces" / "data" / f"{name}.json").read_text())
        assert all(isinstance(w, int) for w in stored["config"]["widths"]), name


def test_an_old_file_with_a_preset_name_loads_resolved(tmp_path: Path) -> None:
    document = named_architecture("proxyless_gpu").to_dict()
    document["config"] = {"widths": "gpu", "resolution": 224, "num_classes": 1000}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(document))
    arch = load_architecture(str(path))
    assert arch.config["widths"] == GPU_WIDTHS
    assert arch == named_architecture("proxyless_gpu")
    assert count_params(space_for(arch).build(arch)) == 7_119_848


# ---- item 3: supernet weights into a network with an auxiliary head ---------------------------
def test_extract_subnet_with_auxiliary_head() -> None:
    torch.manual_seed(0)
    space = get_space("darts", C=4, layers=5, auxiliary=True)
    supernet = space.supernet()
    arch = space.sample(np.random.default_rng(3))
    network = space.extract_subnet(supernet, arch)
    assert network.auxiliary_head is not None
    supernet_state = supernet.state_dict()
    for name, tensor in network.state_dict().items():
        if not name.startswith("auxiliary_head."):
            assert torch.equal(tensor, supernet_state[name]), name
    network.eval(), supernet.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(network(x), supernet(x, space.one_hot(arch)))
    network.train()
    logits, auxiliary = network(x)
    assert logits.shape == auxiliary.shape == (2, 10)


# ---- item 6: only what runs is built, so counts are of what runs ------------------------------
def _unreached(network: torch.nn.Module, x: torch.Tensor) -> list[str]:
    network.train()
    out = network(x)
    loss = sum(o.square().mean() for o in (out if isinstance(out, tuple) else (out,)))
    loss.backward()
    return [name for name, p in network.named_parameters() if p.grad is None]


def test_whole_unused_cells_are_not_built() -> None:
    """Seed 10 of this small factorized space: cells 1 and 4 feed no later cell
    (their successors ignore those inputs) and cell 2 ignores an input; before
    pruning, 64 parameter tensors got no gradient and were counted."""
    torch.manual_seed(0)
    space = get_space("darts", parameterization="factorized", C=4, layers=8)
    arch = space.sample(np.random.default_rng(10))
    network = space.build(arch)
    assert _unreached(network, torch.randn(2, 3, 32, 32)) == []
    assert count_params(network.cells[1]) == count_params(network.cells[4]) == 0


@pytest.mark.parametrize("config", [
    {"parameterization": "factorized", "C": 4, "layers": 8},
    {"parameterization": "factorized", "C": 4, "layers": 6, "network": "imagenet", "resolution": 64},
    {"parameterization": "factorized", "C": 4, "layers": 5, "auxiliary": True},
    {"parameterization": "edges", "C": 4, "layers": 5},
    {"parameterization": "s1", "C": 4, "layers": 5, "fixed_reduction": True},
], ids=["factorized", "factorized-imagenet", "factorized-auxiliary", "edges", "s1-frc"])
def test_every_parameter_of_a_standalone_network_gets_a_gradient(config: dict) -> None:
    space = get_space("darts", **config)
    x = torch.randn(2, 3, space.input_shape(1)[-1], space.input_shape(1)[-1])
    for seed in range(8):
        torch.manual_seed(seed)
        arch = space.sample(np.random.default_rng(seed))
        assert _unreached(space.build(arch), x) == [], f"seed {seed}"


def test_pruned_network_equals_the_supernet_and_copies_its_weights() -> None:
    """Pruning changes no output: the standalone network still equals the supernet with one-hot weights."""
    torch.manual_seed(0)
    space = get_space("darts", parameterization="factorized", C=4, layers=8)
    arch = space.sample(np.random.default_rng(10))
    supernet = space.supernet().eval()
    network = space.extract_subnet(supernet, arch).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(network(x), supernet(x, space.one_hot(arch)))


def test_imagenet_stem_conv_that_no_cell_reads_is_not_built() -> None:
    """ImageNet body, 3 cells (normal, reduce, reduce): the normal cell reads only
    c_{k-2}, the reduction cells only c_{k-1}, so the stem's third conv feeds nothing."""
    torch.manual_seed(0)
    space = get_space("darts", parameterization="factorized", network="imagenet", C=4, layers=3, resolution=64)
    op = space.ops[0]
    choices = {}
    for prefix, keep in (("normal", "0"), ("reduce", "1")):
        for node in (2, 3, 4, 5):
            choices |= {f"{prefix}.node{node}.input0": keep, f"{prefix}.node{node}.input1": keep if node == 2 else str(node - 1),
                        f"{prefix}.node{node}.op0": op, f"{prefix}.node{node}.op1": op}
    arch = space.architecture(choices)
    supernet = space.supernet().eval()
    network = space.extract_subnet(supernet, arch)
    assert network.stem.stem1 is None and network.cells[0].preprocess1 is None
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(network.eval()(x), supernet(x, space.one_hot(arch)))
    assert _unreached(network, x) == []
