"""Every TensorRT name hwnas's code uses exists in TensorRT 10 and 11 (issue #27 item 2).

No GPU and no TensorRT libraries are needed. The names are collected from the source by AST (so the
list cannot go stale): in every module that imports tensorrt (`import tensorrt`, `import_tensorrt()`),
  * module names, enum values and flags: `trt.A` and `trt.A.B` where `trt` is bound to the module;
  * methods and properties: `x.m` where `x` holds a TensorRT object, i.e. was assigned from a call on
    the module or on another TensorRT object, or is a parameter that such an object is passed to;
  * methods a subclass of a TensorRT class defines for TensorRT to call (IProfiler.report_layer_time).
A name only tested with hasattr() is guarded: the code copes with its absence, so it must exist in at
least one of the versions, not in all.

They are checked against
  (a) TensorRT 10: the tensorrt-stubs .pyi (module names; class members, with base classes and the
      nested enums pybind11 exports into their class);
  (b) TensorRT 11: the names in the string table of the tensorrt-cu13-bindings extension module
      (pybind11 keeps every bound name as a NUL-terminated C string; the linker may store a short name
      as the tail of a longer one, e.g. "float16" in "bfloat16", so a tail counts too), plus the names
      its __init__.py defines (__version__). The string table cannot say which class a name belongs
      to, so in 11.x a member is checked by name only;
  (c) the live module, wherever `import tensorrt` works.
The wheels come from tests/tensorrt_api.txt; `make test` downloads them into .venv/tensorrt-api
(HWNAS_TENSORRT_API_DIR overrides). Absent: skipped with the command that fetches them.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PINS = Path(__file__).with_name("tensorrt_api.txt")
SOURCES = ("hwnas", "profilers", "lut", "search_spaces", "benchmarks")
WHEEL_DIR = Path(os.environ.get("HWNAS_TENSORRT_API_DIR", ROOT / ".venv" / "tensorrt-api"))
FETCH = (f"pip download --no-deps --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 "
         f"-d {WHEEL_DIR} -r {PINS.relative_to(ROOT)}")


# ---------------------------------------------------------------- what the code uses


@dataclass(frozen=True, order=True)
class Use:
    """One TensorRT name: ("A",) a module name, ("A", "B") member B of A, ("", "m") a member of some class."""

    path: tuple[str, ...]
    where: str
    guarded: bool = False

    @property
    def text(self) -> str:
        return ".".join(self.path).lstrip(".")


def _key(node: ast.AST) -> str | None:
    """'x' for a name, 'self.x' for an attribute of self; None otherwise."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return f"self.{node.attr}"
    return None


def _imports_tensorrt(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name == "tensorrt" for a in node.names):
            return True
        if isinstance(node, ast.Call) and _is_module_call(node):
            return True
    return False


def _is_module_call(node: ast.AST) -> bool:
    """import_tensorrt() or import_optional("tensorrt", ...)."""
    if not isinstance(node, ast.Call):
        return False
    name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr if isinstance(node.func, ast.Attribute) else ""
    if name == "import_tensorrt":
        return True
    return name == "import_optional" and bool(node.args) and isinstance(node.args[0], ast.Constant) \
        and node.args[0].value == "tensorrt"


class _Module:
    """One source file: which expressions hold the tensorrt module and which hold TensorRT objects."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tree = ast.parse(path.read_text(encoding="utf-8"))
        self.all_functions = [f for f in ast.walk(self.tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)]
        self.functions = {f.name: f for f in self.all_functions}  # for calls by name (a clash only widens)
        self._locals: dict[int, set[str]] = {}
        self.roots: set[str] = {"trt"}  # the code's name for the module (parameters included)
        self.objects: set[str] = set()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                self.roots |= {a.asname or a.name for a in node.names if a.name == "tensorrt"}

    def is_root(self, node: ast.AST) -> bool:
        return _key(node) in self.roots

    def is_object(self, node: ast.AST, local: set[str]) -> bool:
        """Does `node` evaluate to a TensorRT object (not the module)?"""
        key = _key(node)
        if key is not None:
            return key in local or key in self.objects
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = node.func.value
            return self.is_root(receiver) or self.is_object(receiver, local) or (
                isinstance(receiver, ast.Attribute) and self.is_root(receiver.value))  # trt.Logger.WARNING(...)
        return False

    def propagate(self, tainted_params: dict[str, set[str]]) -> bool:
        """One pass: module bindings, TensorRT objects assigned in each function, parameters that
        receive them; True if anything new was learnt."""
        before = (len(self.roots), len(self.objects), sum(map(len, tainted_params.values())))
        for function in self.all_functions:
            local = set(tainted_params.get(function.name, ()))
            for node in ast.walk(function):
                if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    pairs = [(t, node.value) for t in targets]
                    pairs += [(t, v) for t in targets if isinstance(t, ast.Tuple) and isinstance(node.value, ast.Tuple)
                              and len(t.elts) == len(node.value.elts) for t, v in zip(t.elts, node.value.elts)]
                    for target, value in pairs:  # a = b, and a, c = b, d
                        key = _key(target)
                        if key is None:
                            continue
                        if _is_module_call(value) or self.is_root(value):
                            self.roots.add(key)
                        elif self.is_object(value, local):
                            (self.objects if key.startswith("self.") else local).add(key)
                if isinstance(node, ast.Call):
                    name = node.func.id if isinstance(node.func, ast.Name) else (
                        node.func.attr if isinstance(node.func, ast.Attribute) and _key(node.func.value) == "self" else None)
                    callee = self.functions.get(name or "")
                    if callee is None:
                        continue
                    params = [a.arg for a in callee.args.args if a.arg != "self"]
                    for param, arg in zip(params, node.args):
                        if self.is_object(arg, local):
                            tainted_params.setdefault(callee.name, set()).add(param)
            tainted_params.setdefault(function.name, set()).update(local & {a.arg for a in function.args.args})
            self._locals[id(function)] = local
        return before != (len(self.roots), len(self.objects), sum(map(len, tainted_params.values())))

    def uses(self) -> Iterator[Use]:
        where = str(self.path.relative_to(ROOT))
        guarded = {node.args[1].value for node in ast.walk(self.tree)
                   if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "hasattr"
                   and len(node.args) == 2 and isinstance(node.args[1], ast.Constant)}
        for function in [self.tree, *self.all_functions]:
            local = self._locals.get(id(function), set())
            for node in ast.walk(function):
                if isinstance(node, ast.Attribute):
                    if self.is_root(node.value):
                        yield Use((node.attr,), where, node.attr in guarded)
                    elif isinstance(node.value, ast.Attribute) and self.is_root(node.value.value):
                        yield Use((node.value.attr, node.attr), where, node.attr in guarded)
                    elif self.is_object(node.value, local):
                        yield Use(("", node.attr), where, node.attr in guarded)
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "hasattr" \
                        and len(node.args) == 2 and isinstance(node.args[1], ast.Constant):
                    target, name = node.args[0], node.args[1].value
                    if self.is_root(target):
                        yield Use((name,), where, True)
                    elif isinstance(target, ast.Attribute) and self.is_root(target.value):
                        yield Use((target.attr, name), where, True)
                    elif self.is_object(target, local):
                        yield Use(("", name), where, True)
                if isinstance(node, ast.ClassDef):
                    for base in node.bases:
                        if isinstance(base, ast.Attribute) and self.is_root(base.value):
                            for item in node.body:
                                if isinstance(item, ast.FunctionDef) and not item.name.startswith("__"):
                                    yield Use((base.attr, item.name), where)


@functools.cache
def collect_uses() -> list[Use]:
    """Every TensorRT name used by the modules that import tensorrt."""
    modules = []
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            module = _Module(path)
            if _imports_tensorrt(module.tree):
                modules.append(module)
    tainted: dict[str, dict[str, set[str]]] = {str(m.path): {} for m in modules}
    while any([m.propagate(tainted[str(m.path)]) for m in modules]):
        pass
    return sorted({use for module in modules for use in module.uses()})


# ---------------------------------------------------------------- what each version has


@dataclass(frozen=True)
class Surface:
    """A TensorRT version's names: module level, per class (None: unknown), and all members."""

    version: str
    module: frozenset[str]
    classes: dict[str, frozenset[str]] | None
    members: frozenset[str]

    def has(self, use: Use) -> bool:
        if len(use.path) == 1:
            return use.path[0] in self.module
        owner, name = use.path
        if not owner:
            return name in self.members
        if owner not in self.module:
            return False
        return name in self.members if self.classes is None else name in self.classes.get(owner, frozenset())


def _wheel(prefix: str) -> Path:
    found = sorted(WHEEL_DIR.glob(f"{prefix}-*.whl"))
    if not found:
        pytest.skip(f"no {prefix} wheel in {WHEEL_DIR}; `make test` fetches it, or run: {FETCH}")
    return found[-1]


def _pinned(name: str) -> str:
    for line in PINS.read_text(encoding="utf-8").splitlines():
        if line.startswith(f"{name}=="):
            return line.split("==", 1)[1]
    raise AssertionError(f"{PINS.name} pins no {name}")


def _stub_classes(tree: ast.Module) -> dict[str, frozenset[str]]:
    """Class name -> member names (functions, annotated and plain class attributes, nested classes and
    their members: pybind11 exports enum values into the enclosing class), with base classes' members."""
    own: dict[str, set[str]] = {}
    bases: dict[str, list[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            own[node.name] = _defined_names(item for item in ast.walk(node) if item is not node)
            bases[node.name] = [b.id if isinstance(b, ast.Name) else b.attr for b in node.bases if isinstance(b, ast.Name | ast.Attribute)]

    def members(name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        result = set(own.get(name, ()))
        for base in bases.get(name, ()):
            if base not in seen:
                result |= members(base, seen | {name})
        return result

    return {name: frozenset(members(name)) for name in own}


def _defined_names(statements: Iterable[ast.AST]) -> set[str]:
    """Names the statements define: functions, classes, (annotated) assignments, from-imports."""
    names: set[str] = set()
    for node in statements:
        if isinstance(node, ast.ClassDef | ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.ImportFrom):
            names |= {a.asname or a.name for a in node.names}
    return names


def _module_names(tree: ast.Module) -> set[str]:
    return _defined_names(tree.body)


def parse_stub(text: str) -> ast.Module:
    """Parse a generated .pyi, rewriting any def line Python refuses (the 10.x stubs have a few, e.g. a
    required parameter after defaults) as `def name(*args, **kwargs)`: only the names matter here."""
    lines = text.splitlines()
    for _ in range(len(lines)):
        try:
            return ast.parse("\n".join(lines))
        except SyntaxError as error:
            number = (error.lineno or 0) - 1
            match = re.match(r"(\s*)def (\w+)\(", lines[number]) if 0 <= number < len(lines) else None
            if match is None:
                raise
            body = " ..." if lines[number].rstrip().endswith("...") else ""
            lines[number] = f"{match.group(1)}def {match.group(2)}(*args, **kwargs):{body}"
    raise AssertionError("unreachable")


@functools.cache
def stubs_surface() -> Surface:
    """TensorRT 10 from tensorrt-stubs: tensorrt/__init__.pyi and tensorrt_bindings/tensorrt.pyi."""
    with zipfile.ZipFile(_wheel("tensorrt_stubs")) as wheel:
        package = parse_stub(wheel.read("tensorrt/__init__.pyi").decode())
        bindings = parse_stub(wheel.read("tensorrt_bindings/tensorrt.pyi").decode())
    classes = _stub_classes(bindings)
    version = next(n.value.value for n in package.body if isinstance(n, ast.AnnAssign)
                   and isinstance(n.target, ast.Name) and n.target.id == "__version__" and isinstance(n.value, ast.Constant))
    return Surface(str(version), frozenset(_module_names(package) | _module_names(bindings)), classes,
                   frozenset().union(*classes.values()))


def string_table_names(binary: bytes) -> frozenset[str]:
    """Identifiers stored as NUL-terminated strings in `binary`, with every tail of each (the linker
    merges a string into another that ends with it)."""
    names: set[str] = set()
    for chunk in binary.split(b"\x00"):
        for match in re.finditer(rb"[A-Za-z_][A-Za-z0-9_]*\Z", chunk):
            word = match.group().decode()
            names |= {word[i:] for i in range(len(word)) if re.match(r"[A-Za-z_]", word[i])}
    return frozenset(names)


@functools.cache
def bindings_surface() -> Surface:
    """TensorRT 11 from tensorrt-cu13-bindings: the extension module's string table and __init__.py."""
    with zipfile.ZipFile(_wheel("tensorrt_cu13_bindings")) as wheel:
        shared = next(n for n in wheel.namelist() if re.fullmatch(r"tensorrt_bindings/tensorrt[^/]*\.so", n))
        names = string_table_names(wheel.read(shared))
        init = ast.parse(wheel.read("tensorrt_bindings/__init__.py"))
    version = next(n.value.value for n in init.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
                   and any(isinstance(t, ast.Name) and t.id == "__version__" for t in n.targets))
    return Surface(str(version), names | _module_names(init), None, names)


def live_surface() -> Surface:
    try:
        import tensorrt  # noqa: PLC0415
    except ImportError as error:
        pytest.skip(f"`import tensorrt` fails here ({error}); the stubs and the 11.x bindings were checked instead")
    if not hasattr(tensorrt, "__version__"):
        pytest.skip("`import tensorrt` finds a package without TensorRT in it (a stubs-only install?)")
    classes = {name: frozenset(dir(value)) for name, value in vars(tensorrt).items() if isinstance(value, type)}
    return Surface(str(tensorrt.__version__), frozenset(dir(tensorrt)), classes, frozenset().union(*classes.values()))


# ---------------------------------------------------------------- the checks


def test_the_collector_finds_what_the_backend_is_known_to_use() -> None:
    """The AST collection is not empty or blind: names the TensorRT backend plainly uses are in it."""
    found = {use.text for use in collect_uses()}
    for name in ("Builder", "NetworkDefinitionCreationFlag.STRONGLY_TYPED", "Logger.WARNING", "execute_async_v3",
                 "set_tensor_address", "create_network", "build_serialized_network", "IProfiler.report_layer_time",
                 "__version__", "ProfilingVerbosity.DETAILED", "get_tensor_profile_shape", "serialize", "desc"):
        assert name in found, f"{name} not collected from the source; found {sorted(found)}"
    assert not any(use.path[-1] in {"cuda_stream", "data_ptr", "synchronize", "times"} for use in collect_uses())


def test_string_table_reads_names_and_their_tails() -> None:
    table = string_table_names(b"\x00\x00execute_async_v3\x00bfloat16\x00({%}) -> bool\x00FP16 format\x00")
    assert {"execute_async_v3", "bfloat16", "float16", "bool"} <= table
    assert "FP16" not in table and "format" in table and "execute" not in table


@pytest.mark.parametrize("surface", [stubs_surface, bindings_surface, live_surface],
                         ids=["tensorrt-10-stubs", "tensorrt-11-bindings", "live-tensorrt"])
def test_every_tensorrt_name_the_code_uses_exists(surface) -> None:  # type: ignore[no-untyped-def]
    have = surface()
    missing = sorted({f"{use.text} ({use.where})" for use in collect_uses() if not use.guarded and not have.has(use)})
    assert not missing, f"TensorRT {have.version} lacks: {', '.join(missing)}"


def test_versions_checked_are_the_pinned_ones_and_the_guards_matter() -> None:
    ten, eleven = stubs_surface(), bindings_surface()
    assert ten.version.split(".")[0] == "10" and _pinned("tensorrt-stubs").startswith(ten.version)
    assert eleven.version.split(".")[0] == "11" and eleven.version == _pinned("tensorrt-cu13-bindings")
    for use in (u for u in collect_uses() if u.guarded):  # a guard for a name neither version has is dead code
        assert ten.has(use) or eleven.has(use), f"{use.text} ({use.where}) exists in neither TensorRT"
    # what 11 removed and the code must not rely on: the precision builder flags
    assert ten.has(Use(("BuilderFlag", "FP16"), "")) and "FP16" not in eleven.members
    assert not any(use.path[-1] in {"FP16", "INT8"} for use in collect_uses())
