"""benchmarks/supernet_ranking.py's cell-space additions (issue #26): the shards cover every standalone
training exactly once, the separation statistics equal an independent computation (scipy's one-way
ANOVA and Kendall tau on the raw numbers), and a genotype of the 5-cell network is scored in a
3-cell search network (`--supernet-space layers=3`) exactly as that network's one-hot path computes."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import stats

from benchmark_scripts import BENCHMARKS, load_benchmark
from hwnas.search.inherit import inherited_network
from search_spaces import get_space

ranking = load_benchmark("supernet_ranking")
CELLS = {"parameterization": "edges", "C": 4, "resolution": 12, "num_classes": 10, "in_channels": 1}


@pytest.mark.parametrize("shards", [1, 2, 3])
def test_shards_train_every_unit_exactly_once(shards: int) -> None:
    seeds, count = [0, 1, 2], 7
    units = [unit for k in range(shards) for unit in ranking.shard_units(seeds, count, k, shards)]
    assert sorted(units) == sorted(itertools.product(seeds, range(count)))


def test_separation_matches_scipy_on_the_raw_accuracies() -> None:
    rng = np.random.default_rng(0)
    means = rng.uniform(0.7, 0.9, size=6)
    alone = {seed: list(means + rng.normal(0, 0.01, size=6)) for seed in (0, 1, 2)}
    summary = ranking.separation_summary(alone)
    per_arch = [[alone[s][i] for s in (0, 1, 2)] for i in range(6)]
    anova = stats.f_oneway(*per_arch)
    assert summary["anova_F"] == pytest.approx(anova.statistic) and summary["anova_p"] == pytest.approx(anova.pvalue)
    taus = [stats.kendalltau(alone[a], alone[b]).statistic for a, b in ((0, 1), (0, 2), (1, 2))]
    assert summary["kendall_tau_between_seeds_mean"] == pytest.approx(np.mean(taus))
    pooled = np.sqrt(np.mean([np.var(row, ddof=1) for row in per_arch]))
    assert summary["noise_std_pooled"] == pytest.approx(pooled)
    assert summary["spread_std_of_means"] == pytest.approx(np.std([np.mean(r) for r in per_arch], ddof=1))


def test_choice_correlations_count_each_computing_choice_per_genotype() -> None:
    """Counts checked by hand against the genotypes' own choices: `none` never counted, a choice present
    equally often in every genotype left out, and accuracy rising with a choice's count gives rho = +1."""
    space = get_space("darts", **CELLS, layers=5)
    rng = np.random.default_rng(3)
    archs = [space.sample_network(rng) for _ in range(12)]
    pools = [sum(c == "max_pool_3x3" for c in a.choices.values()) for a in archs]
    accuracy = [0.5 + 0.05 * p for p in pools]  # a function of the pool count alone
    table = ranking.choice_correlations(archs, accuracy)
    assert "none" not in table
    assert table["max_pool_3x3"]["spearman"] == pytest.approx(1.0)
    assert table["max_pool_3x3"]["mean_count"] == pytest.approx(np.mean(pools))
    assert (table["max_pool_3x3"]["min"], table["max_pool_3x3"]["max"]) == (min(pools), max(pools))
    same = [space.sample_network(np.random.default_rng(5))] * 4
    assert ranking.choice_correlations(same, [0.1, 0.2, 0.3, 0.4]) == {}


def test_a_genotype_scores_in_a_shallower_search_network_as_its_one_hot_path() -> None:
    torch.manual_seed(0)
    evaluation, search = get_space("darts", **CELLS, layers=5), get_space("darts", **CELLS, layers=3)
    arch = evaluation.sample_network(np.random.default_rng(1))
    supernet = search.supernet(weight_sharing="shared").eval()
    network = inherited_network(search, supernet, arch).eval()  # the genotype names cell types, not cells
    x = torch.randn(2, 1, 12, 12)
    torch.testing.assert_close(network(x), supernet(x, search.one_hot(arch)), rtol=0, atol=1e-6)


def test_a_bad_shard_is_refused_in_one_line() -> None:
    done = subprocess.run([sys.executable, str(BENCHMARKS / "supernet_ranking.py"), "--shard", "2/2"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "--shard 2/2" in done.stderr and "Traceback" not in done.stderr


def test_a_partial_run_reports_what_is_trained_and_the_separation_of_the_paired_architectures(
        capsys: pytest.CaptureFixture[str]) -> None:
    alone = {0: [0.80, 0.84, 0.76, 0.82], 1: [0.81, 0.86, 0.75, None], 2: [None, None, None, None]}
    args = type("Args", (), {"seeds": [0, 1, 2], "train_steps": 200, "train_batch": 32, "lr": 0.05})()
    ranking.report_partial(args, [0.6, 0.61, 0.62, 0.63], alone)
    printed = capsys.readouterr().out
    assert "incomplete (7 of 12)" in printed and "3 architectures with 2+ seeds" in printed
    anova = stats.f_oneway([0.80, 0.81], [0.84, 0.86], [0.76, 0.75])
    assert f"{anova.statistic:.2f}" in printed and f"{anova.pvalue:.3g}" in printed
