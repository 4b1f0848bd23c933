"""Latency look-up tables and the fitted linear latency model of a device profile.

Kept import-light (hwnas.errors imports lut.errors at CLI start-up); use the modules:

- `lut.profile`: `resolve_settings(...)` + `profile_device(settings)`: per-op LUT, whole-network
  samples, fit and report under one profile directory (resumable); `fit_directory(dir)` refits.
- `lut.table`: lut.json, `load(path, expect=Expectation(...))` refusing other conditions, `save`.
- `lut.samples`: samples*.jsonl (append + fsync per block, resume, bad lines reported and skipped).
- `lut.targets`: raw / block / paired latency readings (drift correction by a reference network).
- `lut.models`: the model forms compared (per-choice ridge toward 0 or the scaled LUT, calibrated
  per-op sum, adjacent-pair interactions, gradient boosting); only the linear ones can be stored.
- `lut.fit`: split, validation folds that choose the stored model, held-out scores, learning curve.
- `lut.metrics`: MAPE, RMSE (ms), ±5/±10% shares, Spearman, Kendall, test-retest noise floor.
- `lut.report`: report.md and its PNG plots. `lut.costs`: MACs/params as sums of per-op counts.
"""
