"""Mutation testing of hwnas's numeric core: `python -m tools.mutation [--target NAME ...]`.

Targets, their modules and their own test files are in pyproject.toml under
``[tool.hwnas.mutation]``; mutants judged equivalent (no test can tell them
apart from the original) are in tools/mutation/equivalent.toml, each with why,
beside those that only a CUDA machine can run (kind = "cuda-only": listed,
left out of the rate on a machine without a GPU, never called equivalent).
The result JSON (per target: mutants, killed, survived with diffs, equivalent,
rate = killed / non-equivalent mutants) is merged into `--out`, so targets can
be run one at a time. See docs/contributing.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import random
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from tools.mutation.operators import Mutant, mutants
from tools.mutation.runner import baseline, run_mutant, workspace

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = "(timeout)"  # the killer recorded in killed_by_module for a run past the time limit
OLD_TESTS = "(main's test files)"  # killers of a result stored without per-file counts per module (_per_module)
ADDED_TESTS = "(test files added)"


def load_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hwnas"]["mutation"]


def load_equivalent(config: dict) -> dict[str, dict[str, str]]:
    """key -> {"kind": "equivalent" or "cuda-only", "why": ...}, from the equivalents file."""
    path = ROOT / config["equivalent"]
    if not path.exists():
        return {}
    entries = tomllib.loads(path.read_text()).get("equivalent", [])
    return {entry["key"]: {"kind": entry.get("kind", "equivalent"), "why": entry["why"]} for entry in entries}


def parse_args(argv: list[str] | None, targets: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.mutation", description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", choices=targets, help="run this target only (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the targets and their mutant counts, run nothing")
    parser.add_argument("--sample", type=int, default=None, help="at most this many mutants per target, drawn at random")
    parser.add_argument("--seed", type=int, default=0, help="seed of --sample's draw")
    parser.add_argument("--line", type=int, action="append", help="only the mutants on these lines (quick re-checks)")
    parser.add_argument("--module", action="append", metavar="PATH",
                        help="only the mutants of this module of the target (repeatable): a partial run of a large "
                        "target, recorded with the modules it covered (modules_run)")
    parser.add_argument("--source", type=Path, default=ROOT,
                        help="tree whose files are mutated and tested (default: this one; e.g. an export of an older "
                        "commit, to measure the rate before a change); its missing test files are left out")
    parser.add_argument("--old-tests-from", metavar="REV",
                        help="also report the rate of the test files that exist at git revision REV (list them first)")
    parser.add_argument("--survivors-of", type=Path, metavar="JSON",
                        help="re-run only the mutants that survived in this result file (after adding tests: a killed "
                        "mutant stays killed when tests are only added) and merge into its counts")
    parser.add_argument("--reclassify", action="store_true",
                        help="run nothing: move the survivors of --out whose keys are now in the equivalents file "
                        "into its equivalent / CUDA-only lists and recompute the rates")
    parser.add_argument("--out", type=Path, default=None, help="result JSON to create or merge into")
    return parser.parse_args(argv)


def target_mutants(spec: dict, source: Path = ROOT) -> list[Mutant]:
    found: list[Mutant] = []
    for module in spec["modules"]:
        found.extend(mutants(module, (source / module).read_text()))
    return found


def run_target(name: str, spec: dict, args: argparse.Namespace, equivalent: dict[str, dict[str, str]], logs: Path) -> dict:
    every = target_mutants(spec, args.source)
    if args.survivors_of is not None:
        previous = json.loads(args.survivors_of.read_text())["targets"][name]
        return merge_rerun(previous, run_target_on(name, spec, args, equivalent, logs, every,
                                                   {s["key"] for s in previous["survivors"]}))
    return run_target_on(name, spec, args, equivalent, logs, every, None)


def merge_rerun(previous: dict, rerun: dict) -> dict:
    """The full-set result after re-running its survivors: earlier kills stand, the survivors' verdicts are new."""
    merged = dict(previous)
    for field in ("killed", "timeout", "equivalent", "cuda_only"):
        merged[field] = previous.get(field, 0) + rerun[field]
    merged["cuda_only_mutants"] = previous.get("cuda_only_mutants", []) + rerun["cuda_only_mutants"]
    merged["survived"], merged["uncovered"] = rerun["survived"], rerun["uncovered"]
    merged["survivors"], merged["equivalents"] = rerun["survivors"], previous["equivalents"] + rerun["equivalents"]
    merged["tests"] = rerun["tests"]
    files = dict(previous["killed_by_file"])
    for file, count in rerun["killed_by_file"].items():
        files[file] = files.get(file, 0) + count
    merged["killed_by_file"] = dict(sorted(files.items()))
    if "killed_by_module" in previous:
        modules = {module: dict(files) for module, files in previous["killed_by_module"].items()}
        for module, killers in rerun["killed_by_module"].items():
            into = modules.setdefault(module, {})
            for file, count in killers.items():
                into[file] = into.get(file, 0) + count
        merged["killed_by_module"] = modules
    judged = merged["mutants_run"] - merged["equivalent"] - merged["cuda_only"]
    merged["rate"] = round(merged["killed"] / judged, 4) if judged else None
    merged["reruns"] = [*previous.get("reruns", []), {"date": dt.date.today().isoformat(),
                                                       "survivors_rerun": rerun["mutants_run"],
                                                       "seconds": rerun["seconds"]}]
    if "old_tests" in previous:
        merged["old_tests"] = previous["old_tests"]
        merged["old_tests"]["rate"] = round(previous["old_tests"]["killed"] / judged, 4) if judged else None
    return merged


def run_target_on(name: str, spec: dict, args: argparse.Namespace, equivalent: dict[str, dict[str, str]], logs: Path,
                  every: list[Mutant], only: set[str] | None) -> dict:
    tests = [test for test in spec["tests"] if (args.source / test).exists()]
    if tests != spec["tests"]:
        print(f"{name}: not in {args.source}: {', '.join(sorted(set(spec['tests']) - set(tests)))}", flush=True)
    chosen = every if only is None else [m for m in every if m.key in only]
    if args.line:
        chosen = [m for m in chosen if m.line in args.line]
    if args.module:
        chosen = [m for m in chosen if m.path in args.module]
    if args.sample is not None and len(chosen) > args.sample:
        chosen = sorted(random.Random(args.seed).sample(chosen, args.sample), key=lambda m: (m.path, m.line, m.col))
    start = time.monotonic()
    with workspace(args.source) as copy:
        clean_s, covered = baseline(copy, spec["modules"], tests, logs / f"{name}-baseline.log")
        limit = 3.0 * clean_s + 30.0
        print(f"{name}: {len(chosen)} of {len(every)} mutants, clean tests {clean_s:.1f} s", flush=True)
        counts = {"killed": 0, "timeout": 0, "survived": 0, "uncovered": 0, "equivalent": 0, "cuda_only": 0}
        survived, equivalents, cuda_only = [], [], []
        killed_by_file: dict[str, int] = {}
        killed_by_module: dict[str, dict[str, int]] = {}  # module -> test file (or TIMEOUT) -> mutants killed
        for number, mutant in enumerate(chosen, 1):
            if mutant.key in equivalent:
                entry = equivalent[mutant.key]
                gpu = entry["kind"] == "cuda-only"
                counts["cuda_only" if gpu else "equivalent"] += 1
                (cuda_only if gpu else equivalents).append({**mutant.to_dict(), "why": entry["why"]})
                continue
            outcome = run_mutant(copy, mutant, tests, limit, logs / f"{name}-mutant.log", covered)
            counts[outcome.status] += 1
            if outcome.status == "killed":
                killer = (outcome.killed_by or "unknown").split("::")[0]
                killed_by_file[killer] = killed_by_file.get(killer, 0) + 1
            if outcome.status in ("killed", "timeout"):
                by_file = killed_by_module.setdefault(mutant.path, {})
                killer = TIMEOUT if outcome.status == "timeout" else (outcome.killed_by or "unknown").split("::")[0]
                by_file[killer] = by_file.get(killer, 0) + 1
            if outcome.status in ("survived", "uncovered"):
                survived.append({**mutant.to_dict(), "covered": outcome.status == "survived"})
            print(f"  [{number}/{len(chosen)}] {outcome.status:9s} {outcome.seconds:5.1f} s  "
                  f"{mutant.path}:{mutant.line} {mutant.original!r} -> {mutant.replacement!r}"
                  + (f"  by {outcome.killed_by}" if outcome.killed_by else ""), flush=True)
    judged = len(chosen) - counts["equivalent"] - counts["cuda_only"]
    killed = counts["killed"] + counts["timeout"]
    result = {
        "modules": spec["modules"], "tests": tests, "mutants_total": len(every), "mutants_run": len(chosen),
        "sampled": len(chosen) < len(every), "killed": killed, "timeout": counts["timeout"],
        "survived": counts["survived"] + counts["uncovered"], "uncovered": counts["uncovered"],
        "equivalent": counts["equivalent"], "cuda_only": counts["cuda_only"], "rate": round(killed / judged, 4) if judged else None,
        "clean_tests_s": round(clean_s, 1), "seconds": round(time.monotonic() - start, 1),
        "killed_by_file": dict(sorted(killed_by_file.items())), "survivors": survived, "equivalents": equivalents,
        "cuda_only_mutants": cuda_only, "mutants_by_module": mutants_by_module(chosen),
        "killed_by_module": killed_by_module,
    }
    if args.module:
        result["modules_run"] = [module for module in spec["modules"] if module in args.module]
    if args.old_tests_from:
        # The rate the tests of an older commit reach: the tests run old files first with -x, so a
        # mutant those files kill is reported as killed by one of them.
        old = [test for test in tests if _exists_at(args.old_tests_from, test)]
        old_killed = sum(n for file, n in killed_by_file.items() if file in old) + counts["timeout"]
        result["old_tests"] = {"rev": args.old_tests_from, "files": old, "killed": old_killed,
                               "rate": round(old_killed / judged, 4) if judged else None}
    return result


def _add_counts(first: dict[str, int], second: dict[str, int]) -> dict[str, int]:
    return {key: first.get(key, 0) + second.get(key, 0) for key in sorted({*first, *second})}


def _covered(result: dict) -> list[str]:
    """The modules a stored result ran: `modules_run` for a piece, else every module the target then had
    (a module added to the target since, e.g. lut/models.py, is run as a piece and merged into it)."""
    return result.get("modules_run", result["modules"])


def _per_module(result: dict) -> dict:
    """`result` with mutants_by_module / killed_by_module, synthesised for a one-module result stored
    before those fields existed: its kills by main's test files and by the files added since are known
    only in total (`old_tests`), so they are recorded under OLD_TESTS / ADDED_TESTS, not per file."""
    if "mutants_by_module" in result or len(result["modules"]) != 1:
        return result
    (module,) = result["modules"]
    old = result.get("old_tests", {}).get("killed", 0) - result["timeout"]
    killers = {OLD_TESTS: old, ADDED_TESTS: result["killed"] - result["timeout"] - old, TIMEOUT: result["timeout"]}
    return {**result, "mutants_by_module": {module: result["mutants_run"]},
            "killed_by_module": {module: {file: n for file, n in killers.items() if n}}}


def merge_partial(previous: dict, part: dict) -> dict:
    """One result from two runs of disjoint modules of a target (a large target run in pieces, --module):
    counts and lists added, rates recomputed over both; modules_run dropped once every module is in."""
    previous = _per_module(previous)
    merged = dict(part)
    for field in ("mutants_run", "killed", "timeout", "survived", "uncovered", "equivalent", "cuda_only", "seconds"):
        merged[field] = round(previous.get(field, 0) + part[field], 1)
    for field in ("survivors", "equivalents", "cuda_only_mutants"):
        merged[field] = previous.get(field, []) + part[field]
    merged["killed_by_file"] = _add_counts(previous["killed_by_file"], part["killed_by_file"])
    merged["mutants_by_module"] = {**previous["mutants_by_module"], **part["mutants_by_module"]}
    merged["killed_by_module"] = {**previous["killed_by_module"], **part["killed_by_module"]}
    covered = {*_covered(previous), *part["modules_run"]}
    merged["modules_run"] = [module for module in part["modules"] if module in covered]
    merged["sampled"] = merged["mutants_run"] < merged["mutants_total"]
    if not merged["sampled"]:
        del merged["modules_run"]
    judged = merged["mutants_run"] - merged["equivalent"] - merged["cuda_only"]
    merged["rate"] = round(merged["killed"] / judged, 4) if judged else None
    if "old_tests" in previous and "old_tests" in part:
        killed = previous["old_tests"]["killed"] + part["old_tests"]["killed"]
        # Each piece's rate before counts the files that existed at its own --old-tests-from (main moves on
        # between pieces, and a later main holds the tests an earlier piece added): kept per module.
        files = {**_old_files_by_module(previous), **_old_files_by_module(part)}
        merged["old_tests"] = {**part["old_tests"], "killed": killed, "rate": round(killed / judged, 4) if judged else None,
                               "files_by_module": files}
    merged["reruns"] = previous.get("reruns", []) + part.get("reruns", [])
    return merged


def _old_files_by_module(result: dict) -> dict[str, list[str]]:
    """The test files that counted as old (rate before) for each module the result ran."""
    old = result["old_tests"]
    return old.get("files_by_module") or {module: old["files"] for module in _covered(result)}


def _pieces(previous: dict | None, part: dict) -> bool:
    """Whether `part` runs other modules of the target than the stored partial result `previous`."""
    return previous is not None and "modules_run" in part and not set(_covered(previous)) & set(part["modules_run"])


def mutants_by_module(chosen: list[Mutant]) -> dict[str, int]:
    """How many of the run's mutants each module holds: with the survivors' and equivalents' paths,
    the per-module rates of a target of several modules (tools.mutation.summary)."""
    counts: dict[str, int] = {}
    for mutant in chosen:
        counts[mutant.path] = counts.get(mutant.path, 0) + 1
    return counts


def reclassify(result: dict, equivalent: dict[str, dict[str, str]]) -> dict:
    """`result` with its survivors judged since the run moved to the equivalent / CUDA-only lists."""
    result = dict(result)
    kept = []
    for survivor in result["survivors"]:
        entry = equivalent.get(survivor["key"])
        if entry is None:
            kept.append(survivor)
            continue
        gpu = entry["kind"] == "cuda-only"
        result["cuda_only" if gpu else "equivalent"] = result.get("cuda_only" if gpu else "equivalent", 0) + 1
        listed = "cuda_only_mutants" if gpu else "equivalents"
        result[listed] = [*result.get(listed, []), {**survivor, "why": entry["why"]}]
        result["survived"] -= 1
        result["uncovered"] -= 0 if survivor["covered"] else 1
    result["survivors"] = kept
    judged = result["mutants_run"] - result["equivalent"] - result.get("cuda_only", 0)
    result["rate"] = round(result["killed"] / judged, 4) if judged else None
    if "old_tests" in result:
        result["old_tests"]["rate"] = round(result["old_tests"]["killed"] / judged, 4) if judged else None
    return result


def _exists_at(rev: str, path: str) -> bool:
    return subprocess.run(["git", "cat-file", "-e", f"{rev}:{path}"], cwd=ROOT, capture_output=True).returncode == 0


def main(argv: list[str] | None = None) -> int:
    config = load_config()
    targets = config["targets"]
    args = parse_args(argv, list(targets))
    names = args.target or list(targets)
    unknown = sorted(set(args.module or ()) - {m for name in names for m in targets[name]["modules"]})
    if unknown:
        print(f"tools.mutation: --module {unknown[0]} is not a module of {', '.join(names)}; "
              f"--list names each target's modules", file=sys.stderr)
        return 2
    if args.list:
        for name in names:
            print(f"{name:14s} {len(target_mutants(targets[name])):4d} mutants  tests: {' '.join(targets[name]['tests'])}")
            if len(targets[name]["modules"]) > 1:
                for module in targets[name]["modules"]:
                    print(f"{'':14s} {len(mutants(module, (ROOT / module).read_text())):4d}   {module}")
        return 0
    for module in config["preload"]:  # imported once here, inherited by every forked child
        importlib.import_module(module)
    equivalent = load_equivalent(config)
    if args.reclassify:
        stored = json.loads(args.out.read_text())
        for name in names:
            if name in stored["targets"]:
                stored["targets"][name] = reclassify(stored["targets"][name], equivalent)
        args.out.write_text(json.dumps(stored, indent=1) + "\n")
        return 0
    logs = ROOT / ".mutation" / f"logs-{os.getpid()}"
    logs.mkdir(parents=True, exist_ok=True)
    results = {name: run_target(name, targets[name], args, equivalent, logs) for name in names}
    for name, result in results.items():
        judged = result["mutants_run"] - result["equivalent"] - result.get("cuda_only", 0)
        print(f"{name:14s} {result['killed']:4d}/{judged:4d} killed ({result['rate']:.1%}), {result['equivalent']} "
              f"equivalent, {result.get('cuda_only', 0)} CUDA-only, {result['survived']} survived")
    if args.out is not None:
        previous = json.loads(args.out.read_text()) if args.out.exists() else {"targets": {}}
        previous.update({
            "date": dt.date.today().isoformat(), "tool": "tools/mutation (in-repo AST mutation, fork per mutant)",
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        })
        for name, result in results.items():
            stored = previous["targets"].get(name)
            previous["targets"][name] = merge_partial(stored, result) if _pieces(stored, result) else result
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(previous, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
