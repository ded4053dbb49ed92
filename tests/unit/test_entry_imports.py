"""What a production process loads: the worker and the ``lookalike`` command import no dev tool.

Every worker and API process starts through ``infra.cli`` (the ``lookalike`` script), and a worker
runs ``consumers.runner``; bench and eval code (and the dashboard, for a worker) would only cost
them memory and start-up time, and tie their failures to code they never run. Each check runs in a
fresh interpreter under ``python -X importtime``, so what other tests imported cannot hide a load.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import REPO

DEV_TOOLS = ("infra.bench", "infra.evaluation", "infra.dupes_eval", "infra.backfill_memory")


def loaded_modules(statement: str) -> list[str]:
    """Every module ``statement`` imports, in order, as ``-X importtime`` reports them."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = [line.split("|") for line in done.stderr.splitlines() if line.startswith("import time:")]
    return [row[2].strip() for row in rows[1:] if len(row) == 3]  # the first row is the header


def among(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(f"{p}.") for p in prefixes)]


def test_the_worker_loads_no_bench_eval_or_dashboard_module() -> None:
    modules = loaded_modules("import consumers.runner")
    assert "consumers.runner" in modules  # the report was read
    assert among(modules, (*DEV_TOOLS, "dashboard")) == []


def test_the_lookalike_command_loads_no_bench_or_eval_module() -> None:
    modules = loaded_modules("import infra.cli; infra.cli.build_parser()")
    assert "infra.cli" in modules and "infra.commands.bench" in modules
    assert among(modules, DEV_TOOLS) == []


@pytest.mark.parametrize(("argv", "module"), [("bench", "infra.bench.cli"), ("eval", "infra.evaluation.cli")])
def test_a_dev_tool_loads_when_it_runs(argv: str, module: str) -> None:
    """The lazy registration still reaches the tool: its command function imports it."""
    statement = (
        "import sys, infra.cli\n"
        f"args = infra.cli.build_parser().parse_args({[argv, '--dataset', 'x'] if argv == 'eval' else [argv]})\n"
        "try:\n    args.func(None, None)\nexcept Exception:\n    pass\n"
    )
    assert module in loaded_modules(statement)
