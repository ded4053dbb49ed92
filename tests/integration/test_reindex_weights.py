"""A model change never leaves the local stack without ingest, with ``LOOKALIKE_WEIGHTS`` set the way
``infra/demo.sh`` sets it: in the environment, or in a ``.env`` in the working directory.

One stack for the module, as ``lookalike stack up`` records one: the session's servers, a bridge and
one worker process in ``stack.json``, its first version made by a model no case builds. Each case
runs ``lookalike reindex`` as a user would (a subprocess, ``--json``) and moves the alias on from the
previous case's version, so the cases run in file order: ``--no-pretrained`` (the failure of issue
19: the restarted worker loaded the old model's checkpoint and died), ``--weights`` (a checkpoint the
test makes) and the default (the configured checkpoint, the only offline weights; ``--model`` is the
configured model). After each: the alias's target records the expected weights, the worker process
was replaced and ingests an upload, and searchers with the stale demo settings answer with the
target's model. The last case breaks the new workers' start: the alias goes back, the old workers
run again, and the command says so and exits 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra import cli
from infra.local import stack
from infra.local.parts import Part, alive, load_state, log_tail, probe, save_state
from infra.reindex import switch
from lookalike.embedder import TimmEmbedder, file_tag
from lookalike.index import VectorIndex
from lookalike.search import Searcher
from lookalike.settings import Settings
from lookalike.store import ObjectStore
from lookalike.targets import origin
from lookalike.versions import Target, Versions
from tests.conftest import make_settings
from tests.helpers import CLI, WEIGHTS, dataset_images, free_port, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not WEIGHTS.exists(), reason=f"needs the offline checkpoint {WEIGHTS}"),
]

SEED_MODEL = "mobilenetv2_035"  # random init: the stack's first version, a model no case builds
SMALL = "mobilenetv2_050"  # random init or the test's own checkpoint: fast plumbing
DEMO = {"LOOKALIKE_MODEL": "mobilenetv2_100", "LOOKALIKE_WEIGHTS": str(WEIGHTS)}  # what demo.sh writes
MODEL_VARS = ("LOOKALIKE_MODEL", "LOOKALIKE_WEIGHTS", "LOOKALIKE_PRETRAINED", "LOOKALIKE_WEIGHTS_DIRS")
N_IMAGES = 4
REINDEX_S = 420


@dataclass
class LiveStack:
    """The module's stack: its settings, scratch dir, the test's own checkpoint and some images."""

    settings: Settings
    tmp: Path
    checkpoint: Path
    images: list[Path]

    def worker(self) -> Part:
        return load_state(self.settings)["worker-1"]

    def target(self) -> Target:
        index = VectorIndex(self.settings)
        try:
            found = Versions(index).describe(self.settings.collection)
        finally:
            index.close()
        assert found is not None and found.tag is not None
        return found

    def base_env(self) -> dict[str, str]:
        """Addresses and names of this stack; the model variables come from each case's source."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOOKALIKE_")}
        env.update({k: v for k, v in self.settings.as_env().items() if k not in MODEL_VARS})
        return env

    def workdir(self, name: str, dotenv: bool) -> Path:
        """A working directory of its own, with the demo's ``.env`` in it when ``dotenv``."""
        cwd = self.tmp / name
        cwd.mkdir()
        if dotenv:
            (cwd / ".env").write_text("".join(f"{k}={v}\n" for k, v in DEMO.items()))
        return cwd


def _checkpoint(path: Path) -> Path:
    """A seeded ``SMALL`` model's state dict: a ``--weights`` file other than the configured one."""
    import timm
    import torch

    torch.manual_seed(1)
    torch.save(timm.create_model(SMALL, pretrained=False).state_dict(), path)
    return path


def _ingests(live: LiveStack, key: str, image: Path) -> None:
    """An upload reaches the alias's target: the stack's worker is alive and ingesting."""
    s = live.settings
    ObjectStore(s).put_file(s.bucket, key, image, "image/jpeg")
    index = VectorIndex(s)
    try:

        def present() -> bool:
            index.follow()
            return bool(index.get([f"{s.bucket}/{key}"]))

        try:
            wait_for(present, 180, interval=0.5, what=f"{key} indexed")
        except AssertionError as exc:
            logs = "\n".join(f"{name}:\n{log_tail(part.log)}" for name, part in load_state(s).items())
            raise AssertionError(f"{exc}\n{logs}") from exc
    finally:
        index.close()


@pytest.fixture(scope="module")
def live(servers: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """SeaweedFS and worker-1 recorded in a state dir of the module's own; everything stopped after."""
    from lookalike.bus import ensure_topics

    tmp = tmp_path_factory.mktemp("reindex-weights")
    s = make_settings(servers, model=SEED_MODEL, weights=None, pretrained=False, runtime="torch", state_dir=tmp)
    s, s3 = stack.s3_of_its_own(s)  # its filer publishes to this module's topic
    live = LiveStack(s, tmp, _checkpoint(tmp / f"{SMALL}-seed1.pth"), dataset_images(N_IMAGES + 8))
    parts = [s3, stack.worker_part(1, free_port())]
    try:
        ensure_topics(s)  # before SeaweedFS publishes its first event
        for part in parts:
            stack.start_part(s, part, live.base_env())
            save_state(s, {p.name: p for p in parts if p.pid})
        for part in parts:
            stack.wait_ready(s, part, 180)
        stack.bootstrap(s)
        for i, image in enumerate(live.images[:N_IMAGES]):
            _ingests(live, f"seed/{i}.jpg", image)
        yield live
    finally:
        for part in reversed(list(load_state(s).values()) or parts):
            stack.stop_part(part)
        with contextlib.suppress(Exception):
            VectorIndex(s).drop()


def _reindex(live: LiveStack, name: str, source: str, args: list[str]) -> tuple[int, str]:
    """``lookalike reindex ARGS --json`` with the demo's model variables in the environment or ``.env``."""
    env = live.base_env() | (DEMO if source == "env" else {})
    cwd = live.workdir(name, dotenv=source == "dotenv")
    log = cwd / "reindex.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*CLI, "reindex", *args, "--json"], env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            rc = proc.wait(REINDEX_S)
        except subprocess.TimeoutExpired:
            rc = -1
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return rc, log.read_text(errors="replace")


CASES = [("env", "no-pretrained"), ("env", "weights"), ("env", "default")]
CASES += [("dotenv", "no-pretrained"), ("dotenv", "weights"), ("dotenv", "default")]


def _plan(live: LiveStack, mode: str) -> tuple[list[str], str, str]:
    """The case's arguments, and the model and weights origin its version must record."""
    if mode == "no-pretrained":
        return ["--model", SMALL, "--no-pretrained"], SMALL, "random-init:seed0"
    if mode == "weights":
        return ["--model", SMALL, "--weights", str(live.checkpoint)], SMALL, file_tag(live.checkpoint)
    return ["--model", DEMO["LOOKALIKE_MODEL"]], DEMO["LOOKALIKE_MODEL"], file_tag(WEIGHTS)


@pytest.mark.parametrize(("source", "mode"), CASES, ids=[f"{s}-{m}" for s, m in CASES])
def test_reindex_restarts_the_workers_with_the_weights_the_target_records(
    live: LiveStack, source: str, mode: str
) -> None:
    args, model, weights = _plan(live, mode)
    before, old = live.target(), live.worker()
    rc, out = _reindex(live, f"{source}-{mode}", source, args)
    assert rc == 0, out
    summary = json.loads(out.strip().splitlines()[-1])
    target = live.target()
    assert target.collection == summary["collection"] != before.collection
    assert target.tag is not None and (target.tag.model, origin(target.tag.weights)) == (model, weights)
    worker = live.worker()
    assert summary["restarted_workers"] == 1 and worker.pid != old.pid and alive(worker)
    key = f"after-{source}-{mode}.jpg"
    image = live.images[N_IMAGES + CASES.index((source, mode))]
    _ingests(live, key, image)
    if source == "env":  # searchers get settings objects, not the environment: once per mode is enough
        _serves(live, target, key, image)


def _serves(live: LiveStack, target: Target, key: str, image: Path) -> None:
    """A searcher and the API's service built from the stale demo settings use the target's model."""
    from dashboard.api.service import QueryService

    stale = live.settings.model_copy(update={"model": "resnet18", "weights": WEIGHTS, "pretrained": True})
    searcher = Searcher(stale)  # resnet18 cannot load mobilenet's checkpoint: it must not be loaded
    try:
        found = searcher.search_bytes(image.read_bytes(), k=1)
        assert (found.collection, found.model) == (target.collection, target.tag.model if target.tag else "")
        assert found.neighbours[0].key == key
    finally:
        searcher.close()
    service = QueryService(stale, TimmEmbedder(stale))
    try:
        service.start()
        assert service.embedder.tag == target.tag
    finally:
        service.close()


def test_new_workers_that_cannot_start_put_the_alias_back_and_the_old_ones_run(
    live: LiveStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The new workers get the old checkpoint (the leak this issue fixed, put back on purpose):
    each refuses at start, naming both; the command puts the alias back and exits 1."""
    before, old = live.target(), live.worker()
    real = switch.settings_for_target

    def leaky(settings: Settings, target: Target) -> Settings:
        got = real(settings, target)
        return got if target.collection == before.collection else got.model_copy(update={"weights": WEIGHTS})

    monkeypatch.setattr(switch, "settings_for_target", leaky)
    for name, value in (live.base_env() | DEMO).items():
        if name.startswith("LOOKALIKE_"):
            monkeypatch.setenv(name, value)
    monkeypatch.chdir(live.workdir("broken", dotenv=False))
    rc = cli.main(["reindex", "--model", SMALL, "--no-pretrained", "--json"])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert f"back on {before.collection}" in err and "1 worker(s) run with it again" in err, err
    assert live.target().collection == before.collection
    worker = live.worker()
    assert worker.pid != old.pid and alive(worker) and probe(live.settings, worker)
    refusal = Path(worker.log).read_text(errors="replace")
    assert f"configured for model {SMALL} with weights {file_tag(WEIGHTS)}" in refusal
    assert f"made by model {SMALL} with weights random-init:seed0" in refusal
    _ingests(live, "after-failed-swap.jpg", live.images[-1])
