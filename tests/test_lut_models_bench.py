"""benchmarks/lut_models.py profiles exactly what `hwnas search` profiles with its defaults."""

from __future__ import annotations

from pathlib import Path

from benchmark_scripts import load_benchmark
from hwnas.search.config import SearchConfig
from hwnas.search.latency import LatencyConditions
from hwnas.run import prepare, profile_dir_for


def test_search_default_preset_matches_the_search_profile(tmp_path: Path) -> None:
    bench = load_benchmark("lut_models")
    settings = bench.search_default_settings(12, tmp_path / "prof", None)
    setup = prepare(SearchConfig.from_flat(progress=False, lut="none"))  # the search's data, space and conditions
    c = setup.conditions
    assert (settings.device, settings.backend, settings.batch_size, settings.precision, settings.net_config.threads) == (
        c.device, c.backend, c.batch_size, c.precision, c.threads)
    assert dict(settings.space_config) == dict(setup.space.config) and settings.space == setup.space.name
    assert profile_dir_for(setup.space, LatencyConditions(c.device, c.backend, c.batch_size, c.precision, c.threads)).name \
        .startswith(f"{setup.space.name}-{setup.space.signature()[:8]}-cpu-ort-b1-fp32")
