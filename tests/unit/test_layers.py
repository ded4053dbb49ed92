"""The import rule, checked on the source: core <- producers | consumers | dashboard <- infra.

Every module under the five top-level packages is parsed (never imported) and each import is
checked against ``ALLOWED``: the core imports none of the others, producers and consumers never
import each other, the dashboard imports only the core, and ``infra`` (the CLI, the local stack,
bench and eval) may import everything. Imports inside functions, under ``TYPE_CHECKING``, relative
imports and ``importlib.import_module("...")``-style calls with a literal name all count.
"""

from __future__ import annotations

import ast
import itertools
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
        ("lookalike/cli.py", "from infra.local.stack import free_port\n", "infra.local.stack"),
        ("lookalike/cli.py", "def f():\n    from producers.bridge import serve\n", "producers.bridge"),
        ("lookalike/cli.py", "def f():\n    from consumers.runner import Worker\n", "consumers.runner"),
        ("lookalike/eval_pipeline.py", "import infra.local.stack as stack\n", "infra.local.stack"),
        (
            "lookalike/bench_live.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from infra.local import stack\n",
            "infra.local",
        ),
        # the applications among themselves
        ("producers/bridge.py", "from consumers import dlq\n", "consumers"),
        ("consumers/runner.py", "import producers.upload\n", "producers.upload"),
        ("dashboard/app.py", "from consumers.dlq import DeadLetter\n", "consumers.dlq"),
        ("dashboard/cli.py", "from infra.local.stack import settings_env\n", "infra.local.stack"),
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


# ---------------------------------------------------------------- no import cycle inside the core
CORE = "lookalike"


def module_name(path: str) -> str:
    """``lookalike/bus.py`` -> ``lookalike.bus``; a package's ``__init__.py`` is the package itself."""
    parts = path.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def core_edges(source: str, path: str, known: set[str]) -> Iterator[tuple[int, str]]:
    """(line, core module) for each core module this one imports, ``from lookalike import x`` included.

    Every import counts, as for the layering rule: one inside a function or under ``TYPE_CHECKING``
    still ties the two modules' designs together, and it is how cycles hide.
    """
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.ImportFrom):
            base = _absolute(node, path)
            for alias in node.names:
                child = f"{base}.{alias.name}"
                yield node.lineno, child if child in known else base
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name


def _absolute(node: ast.ImportFrom, path: str) -> str:
    """The module an ``ImportFrom`` names, relative ones resolved against ``path``'s package."""
    if not node.level:
        return node.module or ""
    package = module_name(path).split(".")
    if not path.endswith("__init__.py"):
        package = package[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def import_graph(sources: dict[str, str]) -> dict[str, dict[str, int]]:
    """Core module -> {core module it imports: line of the first such import}, from ``{path: source}``."""
    names = {module_name(path): path for path in sources}
    graph: dict[str, dict[str, int]] = {name: {} for name in names}
    for name, path in names.items():
        for line, imported in core_edges(sources[path], path, set(names)):
            target = imported if imported in names else imported.rsplit(".", 1)[0]
            if target in names and target != name and target != CORE:
                graph[name].setdefault(target, line)
    return graph


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Every elementary cycle's first appearance in a depth-first walk, each as ``[a, b, ..., a]``."""
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    done: set[str] = set()

    def walk(node: str, trail: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in trail:
                cycle = [*trail[trail.index(nxt) :], nxt]
                if frozenset(cycle) not in seen:
                    seen.add(frozenset(cycle))
                    cycles.append(cycle)
            elif nxt not in done:
                walk(nxt, [*trail, nxt])
        done.add(node)

    for start in sorted(graph):
        if start not in done:
            walk(start, [start])
    return cycles


def describe(cycle: list[str], graph: dict[str, dict[str, int]]) -> str:
    """``a.py:12 imports b -> b.py:30 imports a``: each hop with the line that makes it."""
    hops = [f"{a.replace('.', '/')}.py:{graph[a][b]} imports {b}" for a, b in itertools.pairwise(cycle)]
    return " -> ".join(hops)


def core_sources(root: Path = REPO) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted((root / CORE).rglob("*.py"))}


def test_the_core_has_no_import_cycle() -> None:
    graph = import_graph(core_sources())
    assert len(graph) > 10  # the core was walked
    cycles = find_cycles(graph)
    assert not cycles, "import cycles inside the core:\n" + "\n".join(describe(c, graph) for c in cycles)


def test_a_cycle_is_found_and_named_with_its_lines() -> None:
    sources = {
        "lookalike/__init__.py": "",
        "lookalike/a.py": "from lookalike.b import B\n",
        "lookalike/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lookalike import c\n",
        "lookalike/c.py": "def f():\n    from . import a\n",
        "lookalike/d.py": "import lookalike.a\nfrom lookalike import errors\n",
        "lookalike/errors.py": "",
    }
    graph = import_graph(sources)
    assert find_cycles(graph) == [["lookalike.a", "lookalike.b", "lookalike.c", "lookalike.a"]]
    text = describe(find_cycles(graph)[0], graph)
    assert text == (
        "lookalike/a.py:1 imports lookalike.b -> lookalike/b.py:3 imports lookalike.c -> "
        "lookalike/c.py:2 imports lookalike.a"
    )


def test_no_cycle_in_a_layered_core() -> None:
    sources = {
        "lookalike/errors.py": "",
        "lookalike/rows.py": "from lookalike.errors import E\n",
        "lookalike/index.py": "from lookalike.rows import R\nfrom lookalike import errors\n",
    }
    assert find_cycles(import_graph(sources)) == []
