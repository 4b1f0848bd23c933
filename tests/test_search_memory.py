"""Search memory known before the first step, loader workers within the cores (issue #30, group 8).

An ImageNet-size REBAR search (224 px, batch 8) grew past 20 GiB in its first
architecture step and the kernel killed it without a word. The search now
estimates its peak on the meta device and refuses, in one line with the
estimate and the flags that lower it, what will not fit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_contract import refused  # noqa: E402
from hwnas.datasets import seeded_loader, usable_cores  # noqa: E402
from hwnas.search.footprint import search_peak  # noqa: E402
from search_spaces import get_space  # noqa: E402
from test_search_cli import TINY as SEARCH  # noqa: E402

SUPERNET = {"weight_sharing": "shared", "batchnorm": "choice"}


def test_the_all_candidate_step_is_estimated_above_one_path_and_grows_with_the_batch() -> None:
    space = get_space("proxyless", resolution=32, small_input=True, num_classes=10,
                      widths=[8, 8, 8, 8, 16, 16, 16, 24, 32], depths=[2, 1, 1, 1, 1, 1])
    rebar = [search_peak(space, "rebar", "val", b, (3, 32, 32), SUPERNET) for b in (4, 8)]
    gdas = search_peak(space, "gdas", "val", 4, (3, 32, 32), SUPERNET)
    assert rebar[0].activations > 3 * gdas.activations  # every candidate against one
    assert rebar[1].activations == 2 * rebar[0].activations  # activations scale with the batch exactly
    assert rebar[0].parameters == gdas.parameters == sum(p.numel() for p in space.supernet(**SUPERNET).parameters())
    both = search_peak(space, "rebar", "gen", 4, (3, 32, 32), SUPERNET)
    assert both.activations == 2 * rebar[0].activations  # the generalisation objective reads two batches


def test_a_search_beyond_memory_is_refused_before_its_first_step(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    argv = [a for a in SEARCH]
    line = refused(["search", *argv, "--estimator", "rebar", "--arch-batch-size", "100000000", "--out", str(out)],
                   capsys, absent=[out / "metrics.jsonl", out / "checkpoint.pt"])
    assert "would need about" in line and "--arch-batch-size" in line and "--estimator gdas" in line, line


def test_loader_workers_fit_the_cores() -> None:
    loader = seeded_loader(list(range(10)), 2, num_workers=64)
    assert loader.num_workers == usable_cores() <= 64
