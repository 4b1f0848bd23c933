"""Inherited-weight evaluation: BN recalibration gives exactly the batch statistics, and the score is
that of the standalone network carrying the supernet's weights (checked by an independent computation)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from hwnas.datasets.bundled import load_dataset
from hwnas.errors import UsageError
from hwnas.search.inherit import calibration_batches, inherited_score, recalibrate_batchnorm
from search_spaces import get_space

SPACES = {
    "proxyless": {"small_input": True, "widths": [4, 4, 6, 6, 8, 8, 8, 8, 16], "depths": [1, 2, 1, 1, 1, 1]},
    "darts": {"parameterization": "edges", "C": 4, "layers": 3},
}


@pytest.fixture(scope="module")
def digits():  # noqa: ANN201
    return load_dataset("digits", seed=0, limit=400)


def _space(name: str):  # noqa: ANN202
    return get_space(name, in_channels=1, num_classes=10, resolution=8, **SPACES[name])


def _supernet_with_stale_statistics(space, weight_sharing: str = "independent") -> nn.Module:  # noqa: ANN001
    """A supernet whose weights and BN statistics are far from a fresh network's."""
    torch.manual_seed(3)
    supernet = space.supernet(weight_sharing=weight_sharing)
    with torch.no_grad():
        for module in supernet.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.3, 0.3)
                module.running_mean.uniform_(-5, 5)
                module.running_var.uniform_(5, 10)
    return supernet


def _independent_statistics(network: nn.Module, batches) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:  # noqa: ANN001
    """Per BN layer: the mean over batches of each batch's per-channel mean and unbiased variance of the
    layer's input, read with forward hooks from a copy running in training mode (batch statistics)."""
    probe = copy.deepcopy(network).train()
    seen: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def hook(name: str):  # noqa: ANN202
        def record(_module, inputs, _output) -> None:  # noqa: ANN001
            x = inputs[0].double().transpose(0, 1).flatten(1)  # channels x (batch * pixels)
            seen.setdefault(name, []).append((x.mean(1), x.var(1, unbiased=True)))
        return record

    for name, module in probe.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            module.register_forward_hook(hook(name))
    with torch.no_grad():
        for images, _ in batches:
            probe(images)
    return {name: (torch.stack([m for m, _ in stats]).mean(0), torch.stack([v for _, v in stats]).mean(0))
            for name, stats in seen.items()}


@pytest.mark.parametrize("space_name", sorted(SPACES))
def test_recalibration_gives_the_batch_statistics(space_name: str, digits) -> None:  # noqa: ANN001
    space = _space(space_name)
    supernet = _supernet_with_stale_statistics(space)
    arch = space.sample(np.random.default_rng(1))
    network = space.extract_subnet(supernet, arch)
    batches = calibration_batches(digits, 3, 16, seed=5)
    expected = _independent_statistics(network, batches)
    momenta = {name: m.momentum for name, m in network.named_modules() if isinstance(m, nn.BatchNorm2d)}
    assert recalibrate_batchnorm(network, batches) == 3
    checked = 0
    for name, module in network.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            mean, var = expected[name]
            torch.testing.assert_close(module.running_mean.double(), mean, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(module.running_var.double(), var, rtol=1e-4, atol=1e-5)
            assert module.num_batches_tracked.item() == 3
            assert module.momentum == momenta[name]  # restored
            checked += 1
    assert checked == len(expected) > 3
    assert network.training == supernet.training  # the mode it had before is restored


@pytest.mark.parametrize("weight_sharing", ["independent", "shared"])
@pytest.mark.parametrize("space_name", sorted(SPACES))
def test_inherited_score_is_the_standalone_network_with_the_supernet_weights(space_name: str, weight_sharing: str,
                                                                             digits) -> None:  # noqa: ANN001
    space = _space(space_name)
    supernet = _supernet_with_stale_statistics(space, weight_sharing)
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    arch = space.sample(np.random.default_rng(2))
    batches = calibration_batches(digits, 2, 32, seed=0)
    score = inherited_score(space, supernet, arch, digits, batches=batches, split="val")

    # Independently: a fresh standalone network carrying the supernet's tensors (copied by state-dict
    # key from an independent supernet; cropped / sliced out of a shared one by the space's extraction,
    # tested in test_supernet_training.py), BN statistics set from the hooks' batch statistics,
    # evaluated by hand on search-val.
    standalone = space.build(arch)
    own = standalone.state_dict()
    if weight_sharing == "independent":
        standalone.load_state_dict({key: before[key] for key in own})
    else:
        standalone.load_state_dict(space.extract_subnet(supernet, arch).state_dict())
    for name, (mean, var) in _independent_statistics(standalone, batches).items():
        module = standalone.get_submodule(name)
        module.running_mean.copy_(mean.float())
        module.running_var.copy_(var.float())
    standalone.eval()
    images, labels = digits.val.tensors
    with torch.no_grad():
        logits = standalone(images)
    expected_loss = float(nn.functional.cross_entropy(logits, labels))
    expected_accuracy = int((logits.argmax(1) == labels).sum()) / len(labels)

    assert score.bn_batches == 2 and score.split == "val"
    assert score.accuracy == pytest.approx(expected_accuracy, abs=1e-9)
    assert score.loss == pytest.approx(expected_loss, rel=1e-4)
    after = supernet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the supernet is left untouched


def test_calibration_refuses_impossible_requests(digits) -> None:  # noqa: ANN001
    with pytest.raises(UsageError, match="at least 1 batch"):
        calibration_batches(digits, 0, 16)
    with pytest.raises(UsageError, match="fewer BN batches"):
        calibration_batches(digits, 1000, 64)


class _Unreadable(torch.utils.data.Dataset):
    """A split a judge inside a search must never read."""

    def __len__(self) -> int:
        return 10

    def __getitem__(self, index: int):  # noqa: ANN204
        raise AssertionError("the test split was read")


def test_a_finetuned_judge_starts_from_the_inherited_weights_and_reads_neither_test_nor_the_supernet(digits) -> None:  # noqa: ANN001
    """`finetuned_score`: at 0 steps the inherited network as it comes out of the supernet (its BN statistics, eval
    mode), computed here by one plain forward over search-val; with steps it trains (val loss falls on digits); the
    supernet's state is bit-identical after; the test split is never touched."""
    import dataclasses

    from hwnas.search.inherit import finetuned_score, inherited_network

    space = _space("darts")
    supernet = _supernet_with_stale_statistics(space, "shared")
    before = copy.deepcopy(supernet.state_dict())
    arch = space.sample_network(np.random.default_rng(1))
    data = dataclasses.replace(digits, test=_Unreadable())
    start = finetuned_score(space, supernet, arch, data, steps=0)
    network = inherited_network(space, supernet, arch).eval()
    images, labels = digits.val.tensors
    with torch.no_grad():
        logits = network(images)
    expected_loss = float(nn.functional.cross_entropy(logits.double(), labels))
    assert start.loss == pytest.approx(expected_loss, rel=1e-5)
    assert start.accuracy == pytest.approx(float((logits.argmax(1) == labels).double().mean()))
    trained = finetuned_score(space, supernet, arch, data, steps=60, batch_size=32)
    assert trained.loss < start.loss
    assert (trained.split, trained.bn_batches) == ("val", 60)
    after = supernet.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)
