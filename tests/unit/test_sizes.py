"""Small files, clear names: no Python file over 350 lines, no function over 50 (tests included).

A long file or function is where a newcomer gets lost and where two concerns hide in one name; the
rule is checked here rather than trusted to review. Generated code (``*_pb2.py``, from a vendored
``.proto``) is exempt: nobody reads or edits it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import REPO

MAX_FILE_LINES = 350
MAX_FUNCTION_LINES = 50
ROOTS = ("lookalike", "producers", "consumers", "dashboard", "infra", "tests")


def sources() -> Iterator[Path]:
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            if not path.name.endswith("_pb2.py"):
                yield path


def long_functions(tree: ast.AST) -> Iterator[tuple[str, int, int]]:
    """(name, first line, length) of every function or method over the limit, nested ones too."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                yield node.name, node.lineno, length


def test_the_checker_finds_a_long_function() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    assert [(n, ln) for n, ln, _ in long_functions(ast.parse(f"def f():\n{body}\n"))] == [("f", 1)]
    assert not list(long_functions(ast.parse("def g():\n    return 1\n")))


def test_no_file_over_350_lines() -> None:
    paths = list(sources())
    assert len(paths) > 100  # the walk found the code
    too_long = [f"{p.relative_to(REPO)}: {n}" for p in paths if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES]
    assert not too_long, too_long


def test_no_function_over_50_lines() -> None:
    found = [
        f"{path.relative_to(REPO)}:{line} {name} ({length} lines)"
        for path in sources()
        for name, line, length in long_functions(ast.parse(path.read_text()))
    ]
    assert not found, found
