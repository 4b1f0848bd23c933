"""benchmarks/lut_models.py profiles exactly what `hwnas search` profiles with its defaults; it and
benchmarks/control_variate_variance.py (which reads its profile) follow the results contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


def test_without_a_preset_or_a_profile_each_script_says_what_to_give_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert load_benchmark("lut_models").main([]) == 2
    assert capsys.readouterr().err == "error: give --preset (search-default or eager-224), or --report-only\n"
    assert load_benchmark("control_variate_variance").main(["--profile", str(tmp_path / "none")]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: {tmp_path / 'none'} holds no device profile") and error.count("\n") == 1
    assert "benchmarks/lut_models.py --preset search-default" in error


@pytest.mark.slow
def test_a_tiny_profile_feeds_both_scripts_and_report_only_prints_their_tables_again(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """lut_models measures and fits a profile; control_variate_variance runs a real (2-step) search on it; each
    result file's tables come back from `--report-only` as printed."""
    profile, models, variance = tmp_path / "profile", tmp_path / "models.json", tmp_path / "variance.json"
    assert load_benchmark("lut_models").main(["--preset", "search-default", "--samples", "12", "--profile-dir",
                                              str(profile), "--json", str(models)]) == 0
    assert load_benchmark("control_variate_variance").main(["--profile", str(profile), "--draws", "3", "--steps", "1",
                                                            "--warmup", "1", "--json", str(variance)]) == 0
    capsys.readouterr()
    for name, path, count in (("lut_models", models, 3), ("control_variate_variance", variance, 2)):
        document = json.loads(path.read_text(encoding="utf-8"))
        assert len(document["tables"]) == count and str(path) in document["provenance"]["command"]
        assert load_benchmark(name).main(["--report-only", "--json", str(path)]) == 0
        printed = capsys.readouterr().out
        for recorded in document["tables"]:
            assert recorded["title"] in printed and all(cell in printed for row in recorded["rows"] for cell in row)
    rows = json.loads(variance.read_text(encoding="utf-8"))["states"]["uniform (step 0)"]["estimators"]
    assert rows["REINFORCE, no control variate"]["ratio_to_none"] == 1.0


def test_the_correlation_is_pearsons_and_undefined_where_a_side_is_constant() -> None:
    """Every sample under a hinge target gives penalties all 0: r is undefined there (None), not NaN or a crash
    (a 3-draw run hit it in CI); elsewhere it is Pearson's r (scipy)."""
    import numpy as np
    from scipy import stats

    correlation = load_benchmark("control_variate_variance")._correlation  # noqa: SLF001
    assert correlation([(0.0, 0.1), (0.0, 0.3), (0.0, 0.2)]) is None
    assert correlation([(0.2, 1.0), (0.1, 1.0)]) is None
    pairs = np.random.default_rng(0).random((6, 2))
    assert correlation([tuple(p) for p in pairs]) == pytest.approx(stats.pearsonr(pairs[:, 0], pairs[:, 1]).statistic)
