"""``stack up`` keeps the running worker count or says it stops some; hints name a command that works.

Issue 25: after ``demo.sh`` (2 workers) a plain ``stack up`` stopped one without a word; hints said
``lookalike ...`` where only ``.venv/bin/lookalike`` exists; ``stack status`` after ``down`` said
"None vectors".
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from infra.local import cli as stack_cli
from infra.local import stack
from infra.local.parts import Part, load_state, save_state
from lookalike import process
from lookalike.settings import Settings


def recorded(*names: str) -> dict[str, Part]:
    return {name: Part(name, [], "", pid=1000 + i) for i, name in enumerate(names)}


def test_without_workers_the_recorded_count_stays() -> None:
    assert stack.worker_count({}, None) == (1, "")
    assert stack.worker_count(recorded("s3", "worker-1", "worker-2"), None) == (2, "")
    assert stack.worker_count(recorded("worker-1"), 3) == (3, "")
    count, said = stack.worker_count(recorded("worker-1", "worker-2"), 1)
    assert count == 1 and "stopping 1 of the 2 workers (--workers 1)" in said


@pytest.fixture()
def fake_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Settings, list[str], list[str]]:
    """``up`` with nothing started: parts are "brought" by name, stops are recorded."""
    brought: list[str] = []
    stopped: list[str] = []

    def bring(settings: Settings, env: Any, state: dict[str, Part], parts: list[Part], say: Any) -> None:
        brought.extend(p.name for p in parts)
        state.update({p.name: p for p in parts if p.name not in state})

    monkeypatch.setattr(stack, "_bring", bring)
    monkeypatch.setattr(stack, "bootstrap", lambda settings: None)
    monkeypatch.setattr(stack, "ensure_topics", lambda settings: None)
    monkeypatch.setattr(stack, "stop_part", lambda part: stopped.append(part.name))
    settings = Settings(_env_file=None, state_dir=tmp_path)
    save_state(settings, recorded("s3", "kafka", "milvus", "bridge", "worker-1", "worker-2"))
    return settings, brought, stopped


def test_a_plain_up_after_the_demo_keeps_both_workers(fake_up: tuple[Settings, list[str], list[str]]) -> None:
    settings, brought, stopped = fake_up
    said: list[str] = []
    stack.up(settings, {}, dashboard=False, say=said.append)
    assert stopped == [] and {"worker-1", "worker-2"} <= set(brought)
    assert not any("stop" in line for line in said)
    assert sorted(n for n in load_state(settings) if n.startswith("worker-")) == ["worker-1", "worker-2"]


def test_fewer_workers_asked_for_are_stopped_out_loud(fake_up: tuple[Settings, list[str], list[str]]) -> None:
    settings, _, stopped = fake_up
    said: list[str] = []
    stack.up(settings, {}, workers=1, dashboard=False, say=said.append)
    assert stopped == ["worker-2"]
    assert any("stopping 1 of the 2 workers (--workers 1)" in line for line in said)
    assert any(line.split() == ["worker-2", "stopped", "(pid", "1005)"] for line in said), said


def test_status_after_down_never_says_none_vectors() -> None:
    idx: dict[str, Any] = {"uri": "http://127.0.0.1:19530", "collection": "lookalike_images", "vectors": None}
    assert stack_cli.index_line(idx).endswith("size unknown (Milvus is not running)")
    assert stack_cli.index_line({**idx, "error": "timed out\nmore"}).endswith("size unknown (timed out)")
    assert stack_cli.index_line({**idx, "vectors": 0}).endswith(": 0 vectors")


def venv_with_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "lookalike").write_text("#!/bin/sh\n")
    (bin_dir / "lookalike").chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    monkeypatch.chdir(tmp_path)
    return bin_dir


def test_hints_name_the_venv_script_until_it_is_on_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = venv_with_script(tmp_path, monkeypatch)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert process.command_name() == ".venv/bin/lookalike"
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")  # an activated venv
    assert process.command_name() == "lookalike"


def test_up_and_the_demo_end_with_what_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    venv_with_script(tmp_path, monkeypatch)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    text = "\n".join(stack_cli.next_steps(Settings(_env_file=None, dashboard_port=8601, api_port=8091)))
    for wanted in (
        "http://127.0.0.1:8601",
        "http://127.0.0.1:8091/docs",
        "bearer token: lookalike-api-dev-token, the local default",
        '-H "Authorization: Bearer lookalike-api-dev-token"',
        ".venv/bin/lookalike upload DIR",
        ".venv/bin/lookalike objects KEY",
        ".venv/bin/lookalike stack down",
        "`source .venv/bin/activate`",
    ):
        assert wanted in text, wanted
    secret = "\n".join(stack_cli.next_steps(Settings(_env_file=None, api_token="s3cret")))
    assert "s3cret" not in secret and "$LOOKALIKE_API_TOKEN" in secret
