"""`lookalike eval` on a 10-class slice of the tutorial's dataset, through the real local stack.

The pipeline run is the real command (`lookalike eval --json`, as `python -m infra.cli`) against the session's
servers: its own S3 server, bucket, topics, collection and worker process. Its figures must equal the
in-memory evaluation of the same slice with the same model, and it must leave nothing behind.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_settings
from tests.helpers import CLI, DATASET, REPO, WEIGHTS, stop_group

pytestmark = [pytest.mark.integration, pytest.mark.model]

N_CLASSES = 10
KEYS = {"mhr_at_10", "map_at_10_towhee", "map_at_10", "hit_at_1", "n_indexed", "n_queries", "index_seconds"}


def _slice(dst: Path, n_classes: int) -> Path:
    """train/ and test/ of the first classes, symlinked (the csv is left out: folders name the classes)."""
    classes = sorted(p.name for p in (DATASET / "test").iterdir() if p.is_dir())[:n_classes]
    for split in ("train", "test"):
        for cls in classes:
            (dst / split).mkdir(parents=True, exist_ok=True)
            (dst / split / cls).symlink_to(DATASET / split / cls, target_is_directory=True)
    return dst


@pytest.mark.skipif(not WEIGHTS.exists(), reason="needs the shared mobilenetv2_100 weights")
def test_pipeline_and_in_memory_figures_agree(servers, embedder, tmp_path):  # type: ignore[no-untyped-def]
    from infra.evaluation.dataset import load_dataset
    from infra.evaluation.in_memory import run_in_memory

    data = _slice(tmp_path / "slice", N_CLASSES)
    settings = make_settings(servers)
    env = {**settings.as_env(), "PYTHONUNBUFFERED": "1"}
    before = _leftovers(settings)

    cmd = [*CLI, "eval", "--dataset", str(data), "--json", "--stack", "configured"]
    proc = subprocess.Popen(
        cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:  # its own process group: a timeout stops the eval's worker and bridge too, not only the command
        out, err = proc.communicate(timeout=300)
    finally:
        stop_group(proc)  # type: ignore[arg-type]
    assert proc.returncode == 0, err.decode()[-3000:]
    piped = json.loads(out.decode().strip().splitlines()[-1])
    assert KEYS | {"query_p50_ms"} <= set(piped)
    assert piped["mode"] == "pipeline" and piped["stack"] == "configured"
    assert piped["n_indexed"] == 10 * N_CLASSES and piped["n_queries"] == N_CLASSES
    assert piped["index_seconds"] > 0 and piped["query_p50_ms"] > 0

    memory = run_in_memory(load_dataset(data), embedder, max_pixels=settings.max_image_pixels).to_dict()
    assert memory["n_indexed"] == piped["n_indexed"] and memory["n_queries"] == piped["n_queries"]
    for key in ("mhr_at_10", "map_at_10_towhee", "map_at_10", "hit_at_1"):
        assert abs(piped[key] - memory[key]) <= 0.005, (key, piped, memory)
    assert 0 < memory["mhr_at_10"] <= 1  # a measure stuck at 0 would make the agreement meaningless
    # nothing left behind: no eval collection, no eval bucket, no eval topics
    assert _leftovers(settings) == before


def _leftovers(settings: Any) -> tuple[set[str], set[str], list[str]]:
    """What an eval run could leave behind: the collections, the buckets and the eval topics."""
    from kafka import KafkaAdminClient

    from lookalike.index import VectorIndex
    from lookalike.store import ObjectStore

    idx = VectorIndex(settings)
    try:
        collections = set(idx.collections())
    finally:
        idx.close()
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        topics = sorted(t for t in admin.list_topics() if ".eval-" in t)
    finally:
        admin.close()
    return collections, ObjectStore(settings).buckets(), topics
