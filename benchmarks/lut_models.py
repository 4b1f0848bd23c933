"""Latency models compared on held-out networks (issue #27 item 3), for two CPU profiles.

    python benchmarks/lut_models.py --preset search-default --samples 200   # what `hwnas search` profiles
    python benchmarks/lut_models.py --preset eager-224 --samples 150         # eager, 2 threads, 224x224

Each run profiles the device (or resumes/reuses the profile in --profile-dir), refits it with
`lut.profile.fit_directory` (the same code as `hwnas lut fit`), and writes the comparison table (every
candidate model on the held-out networks, the validation scores that chose the stored one, the retest
floor, the learning curve) with the machine and its load average to
benchmarks/results/lut_models/<preset>.json. --profile-only stops after measuring (run one profile at a
time on a shared machine); --fit-only refits an existing profile.

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

from _common import finish, machine, write_json  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "lut_models"


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), required=True)
    parser.add_argument("--samples", type=int, default=200, help="networks to time (default: 200)")
    parser.add_argument("--threads", type=int, default=None, help="timing threads (default: the preset's)")
    parser.add_argument("--profile-dir", type=Path, default=None, help="default: profiles/lut_models-PRESET")
    parser.add_argument("--profile-only", action="store_true", help="measure, do not fit")
    parser.add_argument("--fit-only", action="store_true", help="refit an existing profile, measure nothing")
    parser.add_argument("--out", type=Path, default=None, help="result JSON (default: results/lut_models/PRESET.json)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    out = args.profile_dir or Path("profiles") / f"lut_models-{args.preset}"
    document: dict[str, Any] = {"benchmark": "lut_models", "preset": args.preset, "samples": args.samples,
                                "machine_at_start": machine()}
    if not args.fit_only:
        from lut.profile import profile_device  # noqa: PLC0415

        settings = PRESETS[args.preset](args.samples, out, args.threads)
        settings = dataclasses.replace(settings, fit=False)
        clock = time.perf_counter()
        outcome = profile_device(settings)
        document["profile_seconds"] = time.perf_counter() - clock
        document["profile_machine_at_end"] = machine()
        print(f"profiled {outcome.samples} measurements into {out} in {document['profile_seconds']:.0f} s")
        if args.profile_only:
            write_json(out / "lut_models-profile-run.json", document)
            return 0
    elif (out / "lut_models-profile-run.json").exists():  # the measuring run's machine and load, kept
        document["profile_run"] = json.loads((out / "lut_models-profile-run.json").read_text(encoding="utf-8"))
    from lut.profile import fit_directory  # noqa: PLC0415
    from lut.report import fit_table  # noqa: PLC0415

    table, report, _ = fit_directory(out)
    print(fit_table(report))
    document.update(conditions=table.conditions.to_dict(), space=table.space, space_config=dict(table.space_config),
                    context={k: v for k, v in table.context.items() if isinstance(v, str | int | float)},
                    model=table.model.to_dict() if table.model else None)
    return finish(document, args.out or RESULTS / f"{args.preset}.json", started)


if __name__ == "__main__":
    raise SystemExit(main())
