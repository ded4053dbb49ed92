"""The unit tier needs nothing: no model, no ../shared, no server (``tests/conftest.py``'s promise).

The unit tier's sources (and ``tests/zoo.py``, which they import) are parsed and may not name what
reaches outside the checkout: the sample data and weights in ../shared, a timm model, or the
session's local stack. Tests that need those live in the tiers that say so (``tests/model``,
marker ``model``; ``tests/integration``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import REPO

# names that read ../shared (helpers), load a real model, or start or use the local stack (conftest)
FORBIDDEN = {
    "SHARED",
    "DATASET",
    "WEIGHTS",
    "dataset_images",
    "TimmEmbedder",
    "timm",
    "make_settings",
    "private_stack",
}
STACK_FIXTURES = {"servers", "embedder", "pipeline"}


def tier_sources() -> list[Path]:
    return [*sorted((REPO / "tests" / "unit").glob("*.py")), REPO / "tests" / "zoo.py"]


def outside_uses(source: str) -> Iterator[tuple[int, str]]:
    """(line, name) of each forbidden name, import or stack fixture in one module."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and node.id in FORBIDDEN:
            yield node.lineno, node.id
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN:
            yield node.lineno, node.attr
        elif isinstance(node, ast.ImportFrom | ast.Import):
            for alias in node.names:
                if alias.name in FORBIDDEN or alias.name.split(".")[0] in FORBIDDEN:
                    yield node.lineno, alias.name
        elif isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            for arg in node.args.args:
                if arg.arg in STACK_FIXTURES:
                    yield node.lineno, f"fixture {arg.arg}"


def test_the_unit_tier_reaches_nothing_outside_the_checkout() -> None:
    found = [
        f"{path.relative_to(REPO)}:{line}: {name}"
        for path in tier_sources()
        for line, name in outside_uses(path.read_text())
    ]
    assert not found, "the unit tier must need nothing (move these to tests/model or a server tier):\n" + "\n".join(
        found
    )


def test_the_checker_sees_each_way_out() -> None:
    source = (
        "from tests.helpers import WEIGHTS, dataset_images\nimport timm\n"
        "def test_x(servers):\n    TimmEmbedder(s)\n    helpers.SHARED\n"
    )
    assert sorted(name for _, name in outside_uses(source)) == sorted(
        ["WEIGHTS", "dataset_images", "timm", "fixture servers", "TimmEmbedder", "SHARED"]
    )
