"""`lookalike eval` on a 10-class slice of the tutorial's dataset, through the real local stack.

The pipeline run is the real command (`lookalike eval --json`, as `python -m infra.cli`) against the session's
servers: its own bucket, topics, collection, bridge and worker process. Its figures must equal the
in-memory evaluation of the same slice with the same model, and it must leave nothing behind.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tests.helpers import CLI, DATASET, REPO, WEIGHTS

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
    from lookalike.index import VectorIndex
    from lookalike.store import ObjectStore

    data = _slice(tmp_path / "slice", N_CLASSES)
    settings = make_settings(servers)
    env = {**settings.as_env(), "PYTHONUNBUFFERED": "1"}
    idx = VectorIndex(settings)
    try:
        before = set(idx.collections())
    finally:
        idx.close()
    buckets_before = ObjectStore(settings).buckets()

    proc = subprocess.run(
        [*CLI, "eval", "--dataset", str(data), "--json", "--stack", "configured"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    piped = json.loads(proc.stdout.strip().splitlines()[-1])
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
    idx = VectorIndex(settings)
    try:
        assert set(idx.collections()) == before
    finally:
        idx.close()
    assert ObjectStore(settings).buckets() == buckets_before

    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        assert not [t for t in admin.list_topics() if ".eval-" in t]
    finally:
        admin.close()
