"""Published parameter/MAC counts (docs/design.md#62-published-counts), read from
tests/expected/published_counts.json. Counting only: one forward at full size
for the MACs, no training. HWNAS_REGENERATE_EXPECTED=1 rewrites the 'measured'
entries (the exact counts this code gives) instead of checking them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from search_spaces import count_macs, count_params, get_space, named_architecture

EXPECTED_FILE = Path(__file__).parent / "expected" / "published_counts.json"
EXPECTED = json.loads(EXPECTED_FILE.read_text())
CASES = sorted(key for key in EXPECTED if not key.startswith("_"))


def _counts(case: dict) -> dict[str, int]:
    arch = named_architecture(case["architecture"])
    space = get_space(arch.space, **{**arch.config, **case["config"]})
    network = space.build(arch)
    counts = {"params": count_params(network)}
    if "macs" in case:
        counts["macs"] = count_macs(network, space.input_shape(1))
    return counts


@pytest.fixture(scope="module")
def measured() -> dict[str, dict[str, int]]:
    results = {key: _counts(EXPECTED[key]) for key in CASES}
    if os.environ.get("HWNAS_REGENERATE_EXPECTED"):
        for key, counts in results.items():
            EXPECTED[key]["measured"] = counts
        EXPECTED_FILE.write_text(json.dumps(EXPECTED, indent=2) + "\n")
    return results


@pytest.mark.parametrize("key", CASES)
def test_published_counts(key: str, measured: dict[str, dict[str, int]]) -> None:
    case, counts = EXPECTED[key], measured[key]
    low, high = case["params"]
    assert low <= counts["params"] <= high, f"{key}: {counts['params']:,} parameters, expected {low:,}..{high:,}"
    if "macs" in case:
        low, high = case["macs"]
        assert low <= counts["macs"] <= high, f"{key}: {counts['macs']:,} MACs, expected {low:,}..{high:,}"
    if "measured" in case:
        assert counts == case["measured"], f"{key}: counts changed; regenerate with HWNAS_REGENERATE_EXPECTED=1"


def test_proxyless_gpu_exact_parameter_count() -> None:
    """The one exact number of the project (ProxylessNAS release config)."""
    arch = named_architecture("proxyless_gpu")
    assert count_params(get_space("proxyless", widths="gpu").build(arch)) == 7_119_848


def test_auxiliary_head_is_excluded_from_counts() -> None:
    arch = named_architecture("darts_v2")
    plain = get_space("darts", **arch.config).build(arch)
    with_aux = get_space("darts", **{**arch.config, "auxiliary": True}).build(arch)
    assert count_params(with_aux) == count_params(plain)
    assert count_params(with_aux, exclude=()) > count_params(plain)
