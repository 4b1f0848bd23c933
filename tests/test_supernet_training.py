"""The weight-sharing supernet and the supernet-training rules (issue #12, item 1).

- A shared-weight supernet driven by one-hot weights computes exactly what the
  standalone network carrying the extracted (cropped, sliced) weights computes,
  in both spaces, in eval and train mode, with either BatchNorm mode.
- Gradients reach only the weights in use: the centre crop of a superkernel,
  the first channels of an elastic expansion; the rest of each tensor gets
  exactly zero, and the BatchNorms of other choices get none.
- A relaxed (soft) forward is still sum_i w_i op_i(x) with every op_i the
  standalone op of choice i (what REBAR / RELAX / SNAS define).
- The rules: `fair` runs every choice once per group, paths are a function of
  (seed, step) (resume, DDP), `sandwich` accumulates three paths with in-place
  distillation; warm-up in epochs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hwnas.errors import UsageError
from hwnas.search import SearchConfig
from hwnas.search.paths import PathRule, TrainingPaths, distillation_loss
from hwnas.search.steps import weight_step
from search_spaces import get_space
from search_spaces.choice import Choice
from search_spaces.darts.ops import make_op
from search_spaces.elastic import ElasticMBConv, ElasticSepConv, crop_kernel

PROXYLESS = {"widths": [8, 8, 8, 16, 16, 16, 16, 16, 32], "depths": [2, 1, 1, 2, 1, 1], "resolution": 12,
             "small_input": True, "num_classes": 10, "in_channels": 1}
DARTS = {"C": 4, "layers": 3, "resolution": 12, "num_classes": 10, "in_channels": 1}
SPACES = [("proxyless", PROXYLESS), ("darts", DARTS), ("darts", {**DARTS, "op_set": "unas"}),
          ("darts", {**DARTS, "parameterization": "factorized"})]


def _busy(space, supernet: nn.Module, x: torch.Tensor) -> None:  # noqa: ANN001
    """Random affine parameters and BN statistics gathered over a few random paths."""
    with torch.no_grad():
        for module in supernet.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
        supernet.train()
        for seed in range(3):
            supernet(x, space.one_hot(space.sample(np.random.default_rng(seed))))


@pytest.mark.parametrize("name, config", SPACES)
@pytest.mark.parametrize("batchnorm", ["choice", "shared"])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_one_hot_shared_supernet_equals_the_extracted_standalone_network(name, config, batchnorm, mode) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    space = get_space(name, **config)
    supernet = space.supernet(weight_sharing="shared", batchnorm=batchnorm)
    x = torch.randn(6, 1, 12, 12)
    _busy(space, supernet, x)
    for seed in range(3):
        arch = space.sample(np.random.default_rng(10 + seed))
        supernet.train(mode == "train")
        network = space.extract_subnet(supernet, arch).train(mode == "train")
        expected = supernet(x, space.one_hot(arch))
        torch.testing.assert_close(network(x), expected, rtol=0, atol=1e-6)
        if mode == "train":  # both updated their running statistics the same way
            torch.testing.assert_close(space.extract_subnet(supernet, arch).state_dict(), network.state_dict())


def test_shared_supernet_has_the_largest_candidates_parameters_only() -> None:
    space = get_space("proxyless", **PROXYLESS)
    shared = space.supernet(weight_sharing="shared", batchnorm="shared")
    for layer in shared.layers:
        block = layer.shared[0]
        _, c_in, c_out, stride, _ = next(s for s in space.layer_specs() if s[0] == layer.decision)
        largest = space.candidate("k7_e6", c_in, c_out, stride)
        assert sum(p.numel() for p in block.parameters()) == sum(p.numel() for p in largest.parameters())
    independent = sum(p.numel() for p in space.supernet().parameters())
    assert sum(p.numel() for p in shared.parameters()) < independent / 2


def test_gradients_reach_only_the_cropped_kernel_and_the_sliced_channels() -> None:
    torch.manual_seed(0)
    block = ElasticMBConv(8, 8, {"k3_e3": (3, 3), "k7_e3": (7, 3), "k5_e6": (5, 6), "k7_e6": (7, 6)}, 1, 1e-3, "choice")
    block(torch.randn(4, 8, 6, 6), "k3_e3").square().sum().backward()
    mid = 24
    dw = block.depthwise.weight.grad
    assert dw[:mid, :, 2:5, 2:5].abs().min() > 0
    outside = dw.clone()
    outside[:mid, :, 2:5, 2:5] = 0
    assert torch.count_nonzero(outside) == 0
    assert block.expand.weight.grad[:mid].abs().sum() > 0 and torch.count_nonzero(block.expand.weight.grad[mid:]) == 0
    assert block.project.weight.grad[:, :mid].abs().sum() > 0
    assert torch.count_nonzero(block.project.weight.grad[:, mid:]) == 0
    for other in ("k7_e3", "k5_e6", "k7_e6"):
        assert block.expand_bn.per_choice[other].weight.grad is None

    sliced = ElasticMBConv(8, 8, {"k3_e3": (3, 3), "k7_e6": (7, 6)}, 1, 1e-3, "shared")
    sliced(torch.randn(4, 8, 6, 6), "k3_e3").sum().backward()
    grad = sliced.depthwise_bn.shared.weight.grad
    assert grad[:mid].abs().sum() > 0 and torch.count_nonzero(grad[mid:]) == 0

    sep = ElasticSepConv(4, {"sep_conv_3x3": 3, "sep_conv_5x5": 5, "sep_conv_7x7": 7}, 1, 2, 1, "choice")
    sep(torch.randn(2, 4, 8, 8), "sep_conv_5x5").square().sum().backward()
    for depthwise in sep.depthwise:
        region = torch.zeros_like(depthwise.weight, dtype=torch.bool)
        region[..., 1:6, 1:6] = True
        assert depthwise.weight.grad[region].abs().min() > 0
        assert torch.count_nonzero(depthwise.weight.grad[~region]) == 0


def test_crop_kernel_takes_the_centre() -> None:
    weight = torch.arange(49.0).reshape(1, 1, 7, 7)
    assert crop_kernel(weight, 3).flatten().tolist() == [16, 17, 18, 23, 24, 25, 30, 31, 32]
    assert crop_kernel(weight, 7) is not None and crop_kernel(weight, 7).shape == (1, 1, 7, 7)


@pytest.mark.parametrize("name, config", SPACES[:2])
def test_soft_weights_mix_the_standalone_ops(name, config) -> None:  # noqa: ANN001
    """A relaxed forward on a shared supernet is sum_i w_i op_i(x), op_i the standalone op with the extracted weights."""
    torch.manual_seed(1)
    space = get_space(name, **config)
    supernet = space.supernet(weight_sharing="shared").eval()
    choice = next(m for m in supernet.modules() if isinstance(m, Choice) and len(m.shared))
    c = choice.shared[0]
    if name == "proxyless":
        _, c_in, c_out, stride, _ = next(s for s in space.layer_specs() if s[0] == choice.decision)
        build = lambda op: space.candidate(op, c_in, c_out, stride)  # noqa: E731
        x = torch.randn(3, c_in, 6, 6)
    else:
        channels = c.depthwise[0].in_channels
        build = lambda op: make_op(op, channels, c.stride)  # noqa: E731
        x = torch.randn(3, channels, 8, 8)
    weights = torch.softmax(torch.randn(len(choice.choices)), 0)
    expected = 0
    for index, op in enumerate(choice.choices):
        module = build(op).eval()
        found = choice.shared_for(op)
        if found is not None:
            found[0].copy_into(found[1], module)
        else:
            module.load_state_dict(choice.candidates[op].state_dict())
        expected = expected + weights[index] * module(x)
    torch.testing.assert_close(choice(x, {choice.decision: weights}), expected, rtol=1e-5, atol=1e-6)


def test_fair_rule_runs_every_choice_once_per_group_and_paths_depend_on_seed_and_step_only() -> None:
    space = get_space("proxyless", **PROXYLESS)
    rule = PathRule(space, "fair", seed=3)
    group = rule.group
    assert group == 7
    for start in (0, group, 5 * group):
        paths = [rule(step, dict).paths[0] for step in range(start, start + group)]
        for decision in space.decisions:
            runs = [int(torch.argmax(p[decision.name])) for p in paths]
            assert set(runs) == set(range(len(decision.choices))), decision.name
    again = PathRule(space, "fair", seed=3)
    for step in (0, 9, 40):
        assert all(torch.equal(rule(step, dict).paths[0][k], v) for k, v in again(step, dict).paths[0].items())
    uniform = PathRule(space, "uniform", seed=3)
    draws = {space.decisions[0].name: set()}
    for step in range(60):
        draws[space.decisions[0].name].add(int(torch.argmax(uniform(step, dict).paths[0][space.decisions[0].name])))
    assert len(draws[space.decisions[0].name]) == len(space.decisions[0].choices)


def test_depth_rule_skips_a_block_half_the_time_and_draws_the_rest_uniformly() -> None:
    from scipy.stats import chisquare  # noqa: PLC0415

    space = get_space("proxyless", **PROXYLESS)
    rule, steps = PathRule(space, "depth", seed=5), 2800
    counts = {d.name: np.zeros(len(d.choices)) for d in space.decisions}
    for step in range(steps):
        for name, weights in rule(step, dict).paths[0].items():
            counts[name][int(torch.argmax(weights))] += 1
    skippable = [d for d in space.decisions if "zero" in d.choices]
    assert skippable and len(skippable) < len(space.decisions)
    for decision in space.decisions:
        observed = counts[decision.name]
        if decision in skippable:  # zero with 1/2, each of the n-1 blocks with 1/(2(n-1))
            blocks = len(decision.choices) - 1
            expected = np.array([0.5 if c == "zero" else 0.5 / blocks for c in decision.choices]) * steps
        else:
            expected = np.full(len(decision.choices), steps / len(decision.choices))
        assert chisquare(observed, expected).pvalue > 1e-3, (decision.name, observed)
    again = PathRule(space, "depth", seed=5)
    for step in (0, 17, 400):
        assert all(torch.equal(rule(step, dict).paths[0][k], v) for k, v in again(step, dict).paths[0].items())
    darts = get_space("darts", **DARTS)  # no `zero`: every choice as often as under `uniform`
    draws = [int(torch.argmax(PathRule(darts, "depth", seed=1)(step, dict).paths[0][darts.decisions[0].name]))
             for step in range(700)]
    n = len(darts.decisions[0].choices)
    assert chisquare(np.bincount(draws, minlength=n), np.full(n, 700 / n)).pvalue > 1e-3


def test_network_rule_trains_genotypes_in_the_darts_edge_space_and_uniform_paths_elsewhere() -> None:
    from scipy.stats import chisquare  # noqa: PLC0415

    darts, steps = get_space("darts", **DARTS), 1200
    rule = PathRule(darts, "network", seed=2)
    kept = {d.name: 0 for d in darts.decisions}
    assert darts.ops[0] == "none"
    ops = np.zeros(len(darts.ops) - 1)  # the non-`none` ops of every kept edge
    for step in range(steps):
        path = rule(step, dict).paths[0]
        chosen = {d.name: d.choices[int(torch.argmax(path[d.name]))] for d in darts.decisions}
        # a genotype: per node exactly two input edges with an op, every other edge `none`
        for group in darts.pruning.groups:
            assert sum(chosen[name] != "none" for name in group) == 2, (step, group)
        for name, op in chosen.items():
            if op != "none":
                kept[name] += 1
                ops[darts.ops.index(op) - 1] += 1
    for group in darts.pruning.groups:  # two of a node's k edges, uniformly: each kept with probability 2/k
        observed = np.array([kept[name] for name in group])
        if len(group) > 2:
            assert chisquare(observed, np.full(len(group), observed.sum() / len(group))).pvalue > 1e-3, group
        else:
            assert (observed == steps).all()
    assert chisquare(ops, np.full(len(ops), ops.sum() / len(ops))).pvalue > 1e-3
    again = PathRule(darts, "network", seed=2)
    assert all(torch.equal(rule(9, dict).paths[0][k], v) for k, v in again(9, dict).paths[0].items())
    assert any(not torch.equal(rule(9, dict).paths[0][k], v) for k, v in rule(10, dict).paths[0].items())
    proxyless = get_space("proxyless", **PROXYLESS)  # every architecture is derivable: a uniform draw per decision
    first = proxyless.decisions[0]
    draws = [int(torch.argmax(PathRule(proxyless, "network", seed=1)(step, dict).paths[0][first.name])) for step in range(700)]
    n = len(first.choices)
    assert chisquare(np.bincount(draws, minlength=n), np.full(n, 700 / n)).pvalue > 1e-3


def test_sandwich_rule_is_largest_smallest_and_one_random_path() -> None:
    space = get_space("proxyless", **PROXYLESS)
    paths = PathRule(space, "sandwich", seed=0)(4, dict)
    assert paths.distill and len(paths.paths) == 3
    largest, smallest = paths.paths[0], paths.paths[1]
    for decision in space.decisions:
        assert decision.choices[int(torch.argmax(largest[decision.name]))] == "k7_e6"
        expected = "zero" if "zero" in decision.choices else "k3_e3"
        assert decision.choices[int(torch.argmax(smallest[decision.name]))] == expected
    darts = get_space("darts", **DARTS)
    largest = PathRule(darts, "sandwich", seed=0)(0, dict).paths[0]
    assert all(darts.ops[int(torch.argmax(w))] == "sep_conv_5x5" for w in largest.values())


def test_sample_rule_trains_at_the_estimators_weights() -> None:
    space = get_space("proxyless", **PROXYLESS)
    weights = space.one_hot(space.sample(np.random.default_rng(0)))
    assert PathRule(space, "sample", seed=0)(0, lambda: weights).paths == (weights,)


def test_weight_step_accumulates_the_paths_with_in_place_distillation() -> None:
    torch.manual_seed(0)
    space = get_space("proxyless", **PROXYLESS)
    supernet = space.supernet(weight_sharing="shared").train()
    paths = PathRule(space, "sandwich", seed=0)(0, dict)
    batch = (torch.randn(8, 1, 12, 12), torch.randint(0, 10, (8,)))
    reference = get_space("proxyless", **PROXYLESS).supernet(weight_sharing="shared").train()
    reference.load_state_dict(supernet.state_dict())
    teacher = reference(batch[0], paths.paths[0])
    total = nn.functional.cross_entropy(teacher, batch[1])
    for weights in paths.paths[1:]:
        total = total + distillation_loss(reference(batch[0], weights), teacher)
    total.backward()
    before = {k: v.clone() for k, v in supernet.named_parameters()}
    optimizer = torch.optim.SGD(supernet.parameters(), lr=1.0)
    weight_step(supernet, optimizer, paths, batch, clip=1e9)
    for name, parameter in supernet.named_parameters():
        grad = dict(reference.named_parameters())[name].grad
        change = before[name] - parameter.detach()
        torch.testing.assert_close(change, torch.zeros_like(change) if grad is None else grad, rtol=1e-4, atol=1e-6)
    assert isinstance(paths, TrainingPaths)


def test_distillation_loss_is_zero_for_the_teacher_itself() -> None:
    logits = torch.randn(5, 10)
    assert float(distillation_loss(logits, logits)) == pytest.approx(0.0, abs=1e-6)
    assert float(distillation_loss(torch.zeros(5, 10), logits)) > 0


def test_config_rule_defaults_warmup_epochs_and_refusals() -> None:
    assert SearchConfig.from_flat(estimator="rebar").rule == SearchConfig.from_flat(estimator="gdas").rule == "depth"
    assert SearchConfig.from_flat(estimator="darts", latency_estimator="expected").rule == "sample"
    assert SearchConfig.from_flat(supernet_rule="sandwich").rule == "sandwich"
    config = SearchConfig.from_flat(warmup_epochs=2.0, batch_size=32)
    assert config.warmup_steps_for(2400) == 150 and config.warmup_steps_for(2400, world_size=2) == 75
    assert SearchConfig.from_flat(warmup_steps=7).warmup_steps_for(2400) == 7
    assert SearchConfig().warmup_steps_for(3000) == round(SearchConfig().loop.warmup_epochs * 3000 / 32)
    for bad in ({"weight_sharing": "half"}, {"supernet_rule": "greedy"}, {"warmup_epochs": -1.0}, {"warmup_steps": -1},
                {"supernet_batchnorm": "none"}):
        with pytest.raises(UsageError):
            SearchConfig.from_flat(**bad)


def test_independent_supernet_is_still_the_papers_one_module_per_candidate() -> None:
    space = get_space("proxyless", **PROXYLESS)
    supernet = space.supernet(weight_sharing="independent")
    for layer in supernet.layers:
        assert not len(layer.shared) and set(layer.candidates) == set(layer.choices)
    with pytest.raises(Exception, match="weight_sharing"):
        space.supernet(weight_sharing="half")


def test_cli_flags_reach_the_config_and_bad_values_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    from hwnas.cli import build_parser, main  # noqa: PLC0415
    from hwnas.cli.search import config_from_args  # noqa: PLC0415
    from hwnas.search.config import DEFAULT_WARMUP_EPOCHS  # noqa: PLC0415

    assert config_from_args(build_parser().parse_args(["search"])).loop.warmup_epochs == DEFAULT_WARMUP_EPOCHS
    args = build_parser().parse_args(["search", "--weight-sharing", "independent", "--supernet-rule", "fair",
                                      "--supernet-batchnorm", "shared", "--warmup-epochs", "0.5"])
    config = config_from_args(args)
    assert (config.supernet.weight_sharing, config.rule, config.supernet.batchnorm, config.loop.warmup_epochs) == (
        "independent", "fair", "shared", 0.5)
    assert config_from_args(build_parser().parse_args(["search", "--warmup-steps", "3"])).warmup_steps_for(10**6) == 3
    for bad in (["--supernet-rule", "greedy"], ["--weight-sharing", "half"], ["--warmup-steps", "3", "--warmup-epochs", "1"]):
        assert main(["search", *bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Traceback" not in err[0], err


@pytest.mark.parametrize("sharing, batchnorm", [("shared", "choice"), ("shared", "shared"), ("independent", "choice")])
def test_export_inherits_from_a_saved_supernet_of_either_mode(sharing, batchnorm, tmp_path) -> None:  # noqa: ANN001
    from hwnas.export.weights import inherit_weights  # noqa: PLC0415

    torch.manual_seed(2)
    space = get_space("proxyless", **PROXYLESS)
    supernet = space.supernet(weight_sharing=sharing, batchnorm=batchnorm)
    x = torch.randn(4, 1, 12, 12)
    _busy(space, supernet, x)
    torch.save(supernet.state_dict(), tmp_path / "supernet.pt")
    arch = space.sample(np.random.default_rng(5))
    network = inherit_weights(space, arch, tmp_path / "supernet.pt").eval()
    torch.testing.assert_close(network(x), supernet.eval()(x, space.one_hot(arch)), rtol=0, atol=1e-6)


@pytest.mark.parametrize("batchnorm", ["choice", "shared"])
def test_relaxed_mbconv_shares_one_expand_conv_and_changes_nothing(batchnorm: str) -> None:
    """`forward_choices` (one expand conv for all active choices) gives each choice's own forward, in training
    mode too: the same outputs, gradients and BatchNorm statistics as one forward per choice."""
    options = {"k3_e3": (3, 3), "k5_e3": (5, 3), "k7_e6": (7, 6), "k3_e6": (3, 6)}
    torch.manual_seed(2)
    shared = ElasticMBConv(8, 8, options, 1, 1e-3, batchnorm).double().train()  # float64: equal up to rounding
    alone = ElasticMBConv(8, 8, options, 1, 1e-3, batchnorm).double().train()
    alone.load_state_dict(shared.state_dict())
    x = torch.randn(4, 8, 6, 6, dtype=torch.float64)
    weights = torch.softmax(torch.randn(len(options), dtype=torch.float64), 0)
    x_shared, x_alone = x.clone().requires_grad_(), x.clone().requires_grad_()
    mixed = sum(w * y for w, y in zip(weights, shared.forward_choices(x_shared, list(options)), strict=True))
    reference = sum(w * alone(x_alone, c) for w, c in zip(weights, options, strict=True))
    torch.testing.assert_close(mixed, reference, rtol=1e-10, atol=1e-10)
    mixed.square().sum().backward()
    reference.square().sum().backward()
    torch.testing.assert_close(x_shared.grad, x_alone.grad, rtol=1e-10, atol=1e-10)
    for (name, a), b in zip(shared.named_parameters(), alone.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-10, atol=1e-10, msg=name)
    for (name, a), b in zip(shared.named_buffers(), alone.buffers(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=name)
    one = shared.forward_choices(x, ["k5_e3"])[0]  # a single choice is the plain forward
    torch.testing.assert_close(one, shared(x, "k5_e3"))
