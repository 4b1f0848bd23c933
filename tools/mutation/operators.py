"""The mutants of one source file: small AST edits, each spliced into the source text.

Every mutant replaces one span of the original text (an expression, an
operator's expression, or one statement), so its diff is one readable line
and line numbers stay those of the file. The operators are the classic ones
(operator swaps, comparison flips, boolean swaps, constant tweaks, removed
statements) plus min/max swaps, because a wrong bound or a wrong weight is
exactly the bug that changes a number silently.

Not mutated, on purpose: docstrings, strings (messages and keys: a wrong key
fails loudly already), annotations, the arguments of `raise` (messages), and
any line marked ``# pragma: no mutate``.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

BINARY = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd,
    ast.LShift: ast.RShift, ast.RShift: ast.LShift,
}
COMPARE = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In,
}
BOOLEAN = {ast.And: ast.Or, ast.Or: ast.And}
SWAPPED_CALLS = {"min": "max", "max": "min"}
PRAGMA = "pragma: no mutate"


@dataclass(frozen=True)
class Mutant:
    """One edit of `path`: the text between (line, col) and (end_line, end_col) becomes `replacement`."""

    path: str
    operator: str
    line: int
    col: int
    end_line: int
    end_col: int
    original: str
    replacement: str
    source_line: str
    statement_line: int  # first line of the innermost statement holding the edit
    occurrence: int = 0  # how many identical edits on identical lines come before this one in the file

    @property
    def key(self) -> str:
        """Stable across edits elsewhere in the file: the file, the line's text and the edit
        (an equivalence judged for one line must be judged again when that line changes)."""
        text = f"{self.path}|{self.source_line.strip()}|{self.col}|{self.original}|{self.replacement}|{self.occurrence}"
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def apply(self, source: str) -> str:
        lines = source.splitlines(keepends=True)
        start = sum(len(item) for item in lines[: self.line - 1]) + _byte_to_char(lines[self.line - 1], self.col)
        end = sum(len(item) for item in lines[: self.end_line - 1]) + _byte_to_char(lines[self.end_line - 1], self.end_col)
        return source[:start] + self.replacement + source[end:]

    def diff(self) -> str:
        if self.line != self.end_line:
            return f"{self.path}:{self.line}: {self.original!r} -> {self.replacement!r}"
        shifted = Mutant(self.path, self.operator, 1, self.col, 1, self.end_col, self.original, self.replacement,
                         self.source_line, 1)
        mutated = shifted.apply(self.source_line)
        return f"{self.path}:{self.line}\n- {self.source_line.rstrip()}\n+ {mutated.rstrip()}"

    def to_dict(self) -> dict[str, object]:
        return {"key": self.key, "operator": self.operator, "line": self.line, "diff": self.diff()}


def _byte_to_char(line: str, byte_offset: int) -> int:
    """ast offsets count UTF-8 bytes; slicing counts characters."""
    return len(line.encode()[:byte_offset].decode())


def _wrap(node: ast.AST) -> str:
    text = ast.unparse(node)
    return f"({text})" if isinstance(node, ast.BinOp | ast.BoolOp | ast.Compare | ast.UnaryOp | ast.IfExp) else text


def _parenthesised(lines: list[str], span: ast.AST) -> bool:
    """Whether the source already has parentheses right around `span` (no second pair needed)."""
    before = lines[span.lineno - 1].encode()[: span.col_offset].decode().rstrip()
    after = lines[span.end_lineno - 1].encode()[span.end_col_offset :].decode().lstrip()
    return before.endswith("(") and after.startswith(")")


def _skipped_nodes(tree: ast.Module) -> set[int]:
    """ids of nodes whose subtrees are not mutated: docstrings, annotations, raise arguments."""
    skipped: set[int] = set()

    def skip(node: ast.AST | None) -> None:
        if node is not None:
            skipped.update(id(child) for child in ast.walk(node))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            skip(body[0])
        if isinstance(node, ast.arg):
            skip(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            skip(node.returns)
            for decorator in node.decorator_list:
                skip(decorator)
        elif isinstance(node, ast.ClassDef):
            for decorator in node.decorator_list:
                skip(decorator)
        elif isinstance(node, ast.AnnAssign):
            skip(node.annotation)
        elif isinstance(node, ast.Raise):
            skip(node.exc)
        elif isinstance(node, ast.JoinedStr):
            skip(node)
        elif isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            skip(node)
    return skipped


def _edits(node: ast.AST) -> Iterator[tuple[str, ast.AST, str]]:
    """(operator name, node whose span is replaced, replacement text) for one node."""
    if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
        yield "binary", node, _wrap(ast.BinOp(node.left, BINARY[type(node.op)](), node.right))
    elif isinstance(node, ast.AugAssign) and type(node.op) in BINARY:
        yield "augmented", node, ast.unparse(ast.AugAssign(node.target, BINARY[type(node.op)](), node.value))
        yield "statement", node, "pass"
    elif isinstance(node, ast.Compare):
        for index, op in enumerate(node.ops):
            if type(op) in COMPARE:
                ops = list(node.ops)
                ops[index] = COMPARE[type(op)]()
                yield "compare", node, _wrap(ast.Compare(node.left, ops, node.comparators))
    elif isinstance(node, ast.BoolOp):
        yield "boolean", node, _wrap(ast.BoolOp(BOOLEAN[type(node.op)](), node.values))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub):
        yield "unary", node, _wrap(node.operand)
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        yield "constant", node, repr(not node.value)
    elif isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, complex):
        yield "constant", node, repr(node.value + 1)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in SWAPPED_CALLS:
        yield "call", node.func, SWAPPED_CALLS[node.func.id]
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        yield "statement", node, "pass"


def mutants(path: str, source: str) -> list[Mutant]:
    """Every mutant of `source` (the text of `path`), in source order."""
    tree = ast.parse(source)
    lines = source.splitlines()
    skipped = _skipped_nodes(tree)
    statement_of: dict[int, int] = {}
    for statement in ast.walk(tree):
        if isinstance(statement, ast.stmt):
            for child in ast.walk(statement):
                if not isinstance(child, ast.stmt) or child is statement:
                    statement_of[id(child)] = statement.lineno
    found: list[Mutant] = []
    for node in ast.walk(tree):
        if id(node) in skipped or not hasattr(node, "lineno"):
            continue
        for operator, span, replacement in _edits(node):
            source_line = lines[span.lineno - 1]
            if PRAGMA in source_line:
                continue
            original = ast.get_source_segment(source, span) or ""
            if replacement == original:
                continue
            if replacement.startswith("(") and _parenthesised(lines, span):
                replacement = replacement[1:-1]
            found.append(Mutant(path, operator, span.lineno, span.col_offset, span.end_lineno, span.end_col_offset,
                                original, replacement, source_line, statement_of.get(id(span), span.lineno)))
    found.sort(key=lambda m: (m.line, m.col, m.operator, m.replacement))
    seen: dict[str, int] = {}
    numbered = []
    for mutant in found:
        numbered.append(dataclasses.replace(mutant, occurrence=seen.get(mutant.key, 0)))
        seen[mutant.key] = seen.get(mutant.key, 0) + 1
    return numbered
