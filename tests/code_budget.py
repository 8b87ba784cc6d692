"""What the book shows of the package, and how much of the package is guards.

``shown_objects()`` reads every ``literalinclude`` directive of the book and returns the
functions and classes it pulls in, with their code lines (docstring, blank and comment lines
not counted). ``tests/test_shown_code.py`` holds them to the reader's budget (DESIGN.md, "Two
audiences").

Run as a script, it prints the numbers of the teaching-core note: package code lines, guard
lines, the longest shown function and the lines shown through ``literalinclude``::

    python tests/code_budget.py
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIRECTIVE = re.compile(r"```\{literalinclude\}\s+(\S+)\n((?::[a-z-]+:.*\n)*)")


@dataclass(frozen=True)
class Shown:
    """One object a chapter shows: where, what, and its measures."""

    chapter: str
    path: Path
    name: str
    node: ast.AST
    source: list[str]

    @property
    def is_class(self) -> bool:
        return isinstance(self.node, ast.ClassDef)

    def functions(self) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
        """The node itself, or a class's methods."""
        if not self.is_class:
            return [self.node]  # type: ignore[list-item]
        # type: ignore[attr-defined]
        return [
            n
            for n in self.node.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        ]

    def lines(self) -> int:
        """Lines the page shows (the whole object, docstrings included)."""
        return self.node.end_lineno - _first_line(self.node) + 1  # type: ignore[attr-defined]


def _first_line(node: ast.AST) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decorators)])  # type: ignore[attr-defined]


def docstring_lines(node: ast.AST) -> int:
    """Lines of the docstring of a function or class (0 without one)."""
    body = getattr(node, "body", [])
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
    ):
        if isinstance(body[0].value.value, str):
            return body[0].end_lineno - body[0].lineno + 1  # type: ignore[operator]
    return 0


def body_code_lines(node: ast.AST, source: list[str]) -> list[str]:
    """The body of a function without its docstring, blank lines and comment lines."""
    body = node.body  # type: ignore[attr-defined]
    start = body[0].lineno
    if docstring_lines(node):
        if len(body) == 1:
            return []
        start = body[1].lineno
    lines = source[start - 1 : node.end_lineno]  # type: ignore[attr-defined]
    return [line for line in lines if line.strip() and not line.strip().startswith("#")]


def raise_count(node: ast.AST) -> int:
    """``raise`` statements inside ``node``."""
    return sum(isinstance(n, ast.Raise) for n in ast.walk(node))


def shown_objects(book: Path = ROOT / "book") -> list[Shown]:
    """Every function or class the book's pages pull in with ``literalinclude :pyobject:``."""
    shown = []
    for page in sorted(book.glob("*.md")):
        for path, options in DIRECTIVE.findall(page.read_text()):
            match = re.search(r":pyobject:\s*(\S+)", options)
            file = (page.parent / path).resolve()
            if match is None or file.suffix != ".py":
                continue
            text = file.read_text()
            node: ast.AST | None = ast.parse(text)
            for part in match.group(1).split("."):
                children = ast.iter_child_nodes(node)  # type: ignore[arg-type]
                node = next(
                    (n for n in children if getattr(n, "name", None) == part), None
                )
                if node is None:
                    raise LookupError(f"{page.name}: {path} has no {match.group(1)}")
            # type: ignore[arg-type]
            shown.append(
                Shown(page.name, file, match.group(1), node, text.splitlines())
            )
    return shown


def _guard_lines(tree: ast.AST) -> set[int]:
    """Lines of ``if`` statements whose body only raises, and of every other ``raise``."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and all(
            isinstance(s, ast.Raise) for s in node.body
        ):
            lines.update(range(node.lineno, node.body[-1].end_lineno + 1))  # type: ignore[operator]
        elif isinstance(node, ast.Raise):
            lines.update(range(node.lineno, node.end_lineno + 1))  # type: ignore[operator]
    return lines


def _docstring_line_set(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(
            node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
        ):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
            ):
                lines.update(range(body[0].lineno, body[0].end_lineno + 1))  # type: ignore[operator]
    return lines


def package_measures(package: Path = ROOT / "nbhelpers") -> dict[str, int]:
    """Code lines (no blank, comment or docstring lines) and guard lines of the package."""
    code = guards = 0
    for file in sorted(package.rglob("*.py")):
        text = file.read_text()
        tree = ast.parse(text)
        skip = _docstring_line_set(tree)
        counted = {
            number
            for number, line in enumerate(text.splitlines(), start=1)
            if line.strip() and not line.strip().startswith("#") and number not in skip
        }
        code += len(counted)
        guards += len(_guard_lines(tree) & counted)
    return {"code lines": code, "guard lines": guards}


def main() -> None:
    measures = package_measures()
    shown = shown_objects()
    longest = max(
        (
            (len(body_code_lines(f, s.source)), f"{s.name} ({s.chapter})")
            for s in shown
            for f in s.functions()
        ),
    )
    print(f"package code lines:  {measures['code lines']}")
    print(
        f"package guard lines: {measures['guard lines']} ({measures['guard lines'] / measures['code lines']:.0%})"
    )
    print(f"objects shown:       {len(shown)}")
    print(f"lines shown:         {sum(s.lines() for s in shown)}")
    print(f"longest shown body:  {longest[0]} code lines, {longest[1]}")
    for s in shown:
        worst = max(len(body_code_lines(f, s.source)) for f in s.functions())
        print(
            f"  {s.chapter:<28} {s.name:<32} {s.lines():>4} lines, body {worst:>3}, "
            f"raises {raise_count(s.node)}, docstring {docstring_lines(s.node)}"
        )


if __name__ == "__main__":
    main()
