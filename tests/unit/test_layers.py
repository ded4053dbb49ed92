"""The import rule, checked on the source: core <- producers | consumers | dashboard <- infra.

Every module under the five top-level packages is parsed (never imported) and each import is
checked against ``ALLOWED``: the core imports none of the others, producers and consumers never
import each other, the dashboard imports only the core, and ``infra`` (the CLI, the local stack,
bench and eval) may import everything. Imports inside functions, under ``TYPE_CHECKING``, relative
imports and ``importlib.import_module("...")``-style calls with a literal name all count.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import REPO

PACKAGES = ("lookalike", "producers", "consumers", "dashboard", "infra")
ALLOWED: dict[str, frozenset[str]] = {
    "lookalike": frozenset({"lookalike"}),
    "producers": frozenset({"lookalike", "producers"}),
    "consumers": frozenset({"lookalike", "consumers"}),
    "dashboard": frozenset({"lookalike", "dashboard"}),
    "infra": frozenset(PACKAGES),
}
# calls whose first argument names a module: a way round the rule if left unchecked
DYNAMIC = {"import_module", "__import__", "find_spec", "run_module"}


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    imported: str

    def __str__(self) -> str:
        owner = self.path.split("/", 1)[0]
        allowed = ", ".join(sorted(ALLOWED[owner]))
        return f"{self.path}:{self.line}: imports {self.imported!r} ({owner} may import only {allowed})"


def _imported_names(tree: ast.AST, package: str) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in the tree; relative ones stay in ``package``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                yield node.lineno, f"{package}.{node.module or ''}".rstrip(".")
            elif node.module:
                yield node.lineno, node.module
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in DYNAMIC and isinstance(node.args[0].value, str):
                yield node.lineno, node.args[0].value


def check_source(source: str, path: str) -> list[Violation]:
    """Violations of the rule in one module's source; ``path`` is relative to the repository root."""
    package = path.split("/", 1)[0]
    allowed = ALLOWED[package]
    out = []
    for line, name in _imported_names(ast.parse(source, filename=path), package):
        top = name.split(".", 1)[0]
        if top in PACKAGES and top not in allowed:
            out.append(Violation(path, line, name))
    return out


def modules(root: Path = REPO) -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (root / pkg).rglob("*.py"))


def test_every_module_keeps_the_import_rule() -> None:
    violations = [v for path in modules() for v in check_source(path.read_text(), path.relative_to(REPO).as_posix())]
    assert not violations, "imports against the layering rule:\n" + "\n".join(map(str, violations))


def test_every_package_is_walked() -> None:
    walked = {p.relative_to(REPO).parts[0] for p in modules()}
    assert walked == set(PACKAGES)  # a package that moved or vanished must not pass unchecked
    assert len(modules()) > 30


@pytest.mark.parametrize(
    ("path", "source", "imported"),
    [
        # the directions that existed before the layering (issue 11), one at a time
        ("lookalike/cli.py", "from infra.stack import free_port\n", "infra.stack"),
        ("lookalike/cli.py", "def f():\n    from producers.bridge import serve\n", "producers.bridge"),
        ("lookalike/cli.py", "def f():\n    from consumers.runner import Worker\n", "consumers.runner"),
        ("lookalike/eval_pipeline.py", "import infra.stack as stack\n", "infra.stack"),
        (
            "lookalike/bench_live.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from infra import stack\n",
            "infra",
        ),
        # the applications among themselves
        ("producers/bridge.py", "from consumers import dlq\n", "consumers"),
        ("consumers/runner.py", "import producers.upload\n", "producers.upload"),
        ("dashboard/app.py", "from consumers.dlq import DeadLetter\n", "consumers.dlq"),
        ("dashboard/cli.py", "from infra.stack import settings_env\n", "infra.stack"),
        ("dashboard/app.py", "import importlib\nimportlib.import_module('producers.upload')\n", "producers.upload"),
    ],
)
def test_checker_names_file_line_and_import(path: str, source: str, imported: str) -> None:
    found = check_source(source, path)
    assert [v.imported for v in found] == [imported]
    assert (found[0].path, found[0].line) == (path, len(source.splitlines()))  # each snippet ends on it
    assert path in str(found[0]) and repr(imported) in str(found[0])


@pytest.mark.parametrize(
    ("path", "source"),
    [
        (
            "infra/cli.py",
            "import consumers.cli\nimport dashboard.cli\nimport producers.cli\nfrom lookalike import bus\n",
        ),
        ("producers/cli.py", "from lookalike.settings import Settings\nfrom producers.bridge import serve\n"),
        ("consumers/writer.py", "from . import metrics\nfrom .dlq import DeadLetterWriter\n"),
        ("dashboard/live.py", "from kafka import KafkaConsumer\nimport lookalike.bus\n"),
        ("lookalike/index.py", "from pymilvus import MilvusClient\nfrom lookalike.events import split_id\n"),
    ],
)
def test_checker_allows_what_the_rule_allows(path: str, source: str) -> None:
    assert check_source(source, path) == []
