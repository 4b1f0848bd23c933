"""No import circles among hwnas's packages (issue #28): not at module level, and not closed by an
import inside a function either (such an import hides a circle, it does not remove it). And the job
layers inside hwnas import only downwards: `hwnas.cli` -> `hwnas.run` -> `hwnas.search`.

The graph is read from the source with `ast`: every `import` / `from ... import` anywhere in a module
of `hwnas`, `lut`, `profilers` and `search_spaces` is an edge to the deepest module of those packages it
names (`from a.b import c` is an edge to `a.b.c` when that is a module, else to `a.b`)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("hwnas", "lut", "profilers", "search_spaces")
LAYERS = ("hwnas.cli", "hwnas.run", "hwnas.search")
"""hwnas's job layers, top first: the command line, the run layer (what runs a whole job), the method.
A module may import its own layer and those below it; a module in no layer (hwnas.report, hwnas.train,
...) is below them all, so it imports none of them but `hwnas.search`."""
ENTRY_POINTS = ("hwnas.__main__",)
"""Modules above every layer (`python -m hwnas` runs the command line)."""


def modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def import_graph(found: dict[str, Path]) -> dict[str, set[str]]:
    def known(name: str) -> str | None:
        while name and name not in found:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in found}
    for name, path in found.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    base = f"{anchor}.{base}" if base else anchor
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in found else base for alias in node.names]
            else:
                continue
            graph[name].update(t for t in map(known, targets) if t is not None and t != name)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def layer(module: str, layers: tuple[str, ...]) -> int:
    """How far down `module` sits: the index of its layer, or len(layers) for a module in none."""
    return next((i for i, top in enumerate(layers) if module == top or module.startswith(top + ".")), len(layers))


def upward_imports(graph: dict[str, set[str]], layers: tuple[str, ...], entry_points: tuple[str, ...] = ()) -> list[str]:
    """Every edge from a module into a layer above its own ('importer -> imported'); the last layer,
    the lowest, may be imported by modules in no layer."""
    found = []
    for name, targets in graph.items():
        if name in entry_points:
            continue
        for target in sorted(targets):
            below, above = layer(name, layers), layer(target, layers)
            if above < below and not (above == len(layers) - 1 and below == len(layers)):
                found.append(f"{name} -> {target}")
    return sorted(found)


def test_the_packages_import_without_circles() -> None:
    found = modules(ROOT, PACKAGES)
    graph = import_graph(found)
    assert len(found) > 100 and sum(map(len, graph.values())) > 300  # the walk saw the whole tree
    assert circles(graph) == []


def test_a_circle_closed_inside_a_function_is_found(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("from pkg.b import g\n\ndef f():\n    return g()\n")
    (tmp_path / "pkg" / "b.py").write_text("def g():\n    from pkg import a\n    return a\n")
    (tmp_path / "pkg" / "c.py").write_text("from . import a\n")
    graph = import_graph(modules(tmp_path, ("pkg",)))
    assert graph["pkg.c"] == {"pkg.a"}
    assert circles(graph) == [["pkg.a", "pkg.b"]]


def test_the_job_layers_import_only_downwards() -> None:
    graph = import_graph(modules(ROOT, PACKAGES))
    assert upward_imports(graph, LAYERS, ENTRY_POINTS) == []
    # the layers are joined where the job goes down: the CLI runs the run layer, which runs the search
    assert "hwnas.run" in graph["hwnas.cli.search"] and any(t.startswith("hwnas.search.") for t in graph["hwnas.run.search"])


def test_an_upward_import_is_found(tmp_path: Path) -> None:
    for package in ("top", "mid", "low", "aside"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "top" / "a.py").write_text("from mid import b\n")
    (tmp_path / "mid" / "b.py").write_text("from low import c\n\ndef f():\n    from top import a\n    return a\n")
    (tmp_path / "low" / "c.py").write_text("import aside.d\n")
    (tmp_path / "aside" / "d.py").write_text("from low import c\nfrom mid import b\n")
    graph = import_graph(modules(tmp_path, ("top", "mid", "low", "aside")))
    assert upward_imports(graph, ("top", "mid", "low")) == ["aside.d -> mid.b", "mid.b -> top.a"]


def test_the_benchmarks_import_the_run_layer_by_its_public_names() -> None:
    """`from hwnas.run import run_search`, never `from hwnas.run.search import ...`: the run layer's modules may move."""
    public, internal = 0, []
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [alias.name for alias in node.names]
            public += sum(name == "hwnas.run" for name in names)
            internal += [f"{path.name}: {name}" for name in names if name.startswith("hwnas.run.")]
    assert internal == [] and public >= 10
