"""Latency models compared on held-out networks (issue #27 item 3), for two CPU profiles.

    python benchmarks/lut_models.py --preset search-default --samples 200   # what `hwnas search` profiles
    python benchmarks/lut_models.py --preset eager-224 --samples 150         # eager, 2 threads, 224x224

Each run profiles the device (or resumes/reuses the profile in --profile-dir, default
profiles/lut_models-<preset>), refits it with `lut.profile.fit_directory` (the same code as `hwnas lut
fit`), and prints and records three tables: the profile (measurements, split, the networks' spread against
one measurement's error), every candidate model on the held-out networks beside the validation scores that
chose the stored one and the retest floor, and the learning curve. The result file (--json, default
benchmarks/results/lut_models/<preset>.json) holds them with the command, commit, machine and load average;
`--report-only` prints them again from it. --profile-only stops after measuring (run one profile at a time on
a shared machine); --fit-only refits an existing profile (and keeps the measuring run's record).

Presets:
  search-default  the profile `hwnas search` makes with its defaults: the cluttered-MNIST proxyless
                  space (small widths and depths, 36x36, 1 channel, 10 classes), ONNX Runtime on the
                  CPU, batch 1, fp32, 1 thread (hwnas.search.config.SearchConfig, pipeline.default_space);
  eager-224       proxyless at 224x224 (full widths), eager PyTorch, batch 1, fp32, 2 threads (--threads
                  changes it): large activations that leave the cache between layers, so a per-op sum
                  timed layer by layer may be off.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import add_result_options, finish, json_path, machine, provenance, report_only, table, write_json  # noqa: E402

PROFILES = Path("profiles")
"""Where each preset's device profile is measured (`profiles/lut_models-<preset>`, relative to the working
directory, ignored by git); `control_variate_variance.py` reads the search-default one from there."""

PROFILE_RUN = "lut_models-profile-run.json"
"""A --profile-only run's record in the profile folder (command, commit, machine, load, seconds), which the
--fit-only run that follows copies into its result file."""


def profile_dir(preset: str, given: Path | None = None) -> Path:
    """The profile folder of `preset`: --profile-dir, else profiles/lut_models-<preset>."""
    return given if given is not None else PROFILES / f"lut_models-{preset}"


def search_default_settings(samples: int, out: Path, threads: int | None) -> Any:
    """The profile settings `hwnas search` uses with its defaults (space filled from the data's shape)."""
    from hwnas.search.config import SearchConfig  # noqa: PLC0415
    from hwnas.run import default_space, load_search_data, space_for_data  # noqa: PLC0415
    from lut.profile import resolve_settings  # noqa: PLC0415

    defaults = SearchConfig().flat()
    space_config, side = default_space(defaults["dataset"], defaults["space"])
    config = SearchConfig.from_flat(space_config=space_config, image_size=side)
    space = space_for_data(config, load_search_data(config))
    flat = config.flat()
    return resolve_settings(space=space.name, space_options=dict(space.config), device=flat["latency_device"],
                            backend=flat["latency_backend"], batch_size=flat["latency_batch_size"],
                            precision=flat["latency_precision"], samples=samples, out=out,
                            threads=threads or flat["latency_threads"], progress=False)


def eager_224_settings(samples: int, out: Path, threads: int | None) -> Any:
    from lut.profile import resolve_settings  # noqa: PLC0415

    return resolve_settings(space="proxyless", device="cpu", backend="eager", batch_size=1, precision="fp32",
                            input_size=224, samples=samples, out=out, threads=threads or 2, progress=False)


PRESETS = {"search-default": search_default_settings, "eager-224": eager_224_settings}


def _profile_rows(report: Any, read: Any, table: Any, profile: dict[str, Any] | None) -> list[list[Any]]:
    """What the fit stands on: the measurements, the split, signal against noise, the reading and model stored."""
    retests = sum(1 for r in read.records if r.repeat == 1)
    c = table.conditions
    rows: list[list[Any]] = [
        ["conditions", f"{table.space} {list(c.input_shape)}, {c.device} {c.backend}, batch {c.batch_size}, {c.precision}, "
                       f"{table.context.get('threads', '?')} thread(s)"],
        ["measurements", f"{len(read.records) - retests} networks + {retests} retests"],
        ["split", f"{report.n_train} training, {report.n_test} held out"],
        ["networks' spread (std / mean)", f"{100 * report.spread:.1f}%"],
        ["one measurement's error (retest MAPE / sqrt 2)",
         "n/a (no retest)" if report.noise is None else f"{report.noise.mape / 2**0.5:.2f}%"],
        ["latency reading fitted", report.target],
        ["stored model (lowest validation MAPE)", report.chosen],
    ]
    if profile is not None and isinstance(profile.get("seconds"), float | int):
        rows.append(["profiling time", f"{profile['seconds']:.0f} s"])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None, help="required unless --report-only")
    parser.add_argument("--samples", type=int, default=200, help="networks to time (default: 200)")
    parser.add_argument("--threads", type=int, default=None, help="timing threads (default: the preset's)")
    parser.add_argument("--profile-dir", type=Path, default=None, help=f"default: {PROFILES}/lut_models-PRESET")
    parser.add_argument("--profile-only", action="store_true", help="measure, do not fit")
    parser.add_argument("--fit-only", action="store_true", help="refit an existing profile, measure nothing")
    add_result_options(parser, "lut_models", "<preset>")
    args = parser.parse_args(argv)
    if args.report_only:
        return report_only(json_path(args, "lut_models", args.preset or "search-default"))
    if args.preset is None:
        print("error: give --preset (search-default or eager-224), or --report-only", file=sys.stderr)
        return 2
    started = time.perf_counter()
    out = profile_dir(args.preset, args.profile_dir)
    path = json_path(args, "lut_models", args.preset)
    document: dict[str, Any] = {"benchmark": "lut_models", "provenance": provenance(argv),
                                "settings": {"preset": args.preset, "samples": args.samples, "threads": args.threads,
                                             "profile_dir": str(out)}}
    if not args.fit_only:
        from lut.profile import profile_device  # noqa: PLC0415

        settings = PRESETS[args.preset](args.samples, out, args.threads)
        settings = dataclasses.replace(settings, fit=False)
        clock = time.perf_counter()
        outcome = profile_device(settings)
        profile = {"provenance": document["provenance"], "seconds": time.perf_counter() - clock,
                   "machine_at_end": machine(), "measurements": outcome.samples}
        print(f"profiled {outcome.samples} measurements into {out} in {profile['seconds']:.0f} s")
        if args.profile_only:
            write_json(out / PROFILE_RUN, profile)
            return 0
        document["profile_run"] = profile
    elif (out / PROFILE_RUN).exists():  # the measuring run's command, machine and load, kept
        document["profile_run"] = json.loads((out / PROFILE_RUN).read_text(encoding="utf-8"))
    from lut.fit import networks_needed  # noqa: PLC0415
    from lut.profile import fit_directory  # noqa: PLC0415
    from lut.report import fit_rows, learning_rows  # noqa: PLC0415

    lut, report, read = fit_directory(out)
    title = f"{args.preset}: latency models compared on {report.n_test} held-out networks"
    table(document, f"{title}: the profile", ["", "this run"], _profile_rows(report, read, lut, document.get("profile_run")))
    table(document, f"{title} (valid.: 5-fold cross-validation inside the training split, which chose the stored model)",
          *fit_rows(report))
    table(document, f"{args.preset}: learning curve (each model refitted on random subsets of the training split, mean of 5; "
                    "held-out MAPE and Kendall tau)", *learning_rows(report.learning, networks_needed(report.learning)))
    document.update(conditions=lut.conditions.to_dict(), space=lut.space, space_config=dict(lut.space_config),
                    context={k: v for k, v in lut.context.items() if isinstance(v, str | int | float)},
                    model=lut.model.to_dict() if lut.model else None)
    return finish(document, path, started)


if __name__ == "__main__":
    raise SystemExit(main())
