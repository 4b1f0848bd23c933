"""Latency look-up tables and the fitted linear latency model of a device profile.

Kept import-light (hwnas.errors imports lut.errors at CLI start-up); use the modules:

- `lut.profile`: `resolve_settings(...)` + `profile_device(settings)`: per-op LUT, whole-network
  samples, fit and report under one profile directory (resumable); `fit_directory(dir)` refits.
- `lut.table`: lut.json, `load(path, expect=Expectation(...))` refusing other conditions, `save`.
- `lut.samples`: samples*.jsonl (append + fsync per block, resume, bad lines reported and skipped).
- `lut.targets`: raw / block / paired latency readings (drift correction by a reference network).
- `lut.fit`: ridge fits (toward 0 or toward the scaled LUT) and baselines on a held-out split.
- `lut.metrics`: MAPE, RMSE (ms), ±5/±10% shares, Spearman, Kendall, test-retest noise floor.
- `lut.report`: report.md and its PNG plots. `lut.costs`: MACs/params as sums of per-op counts.
"""
