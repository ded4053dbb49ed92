"""`lookalike bench --json` with tiny sizes: every key present and sane, and nothing left running.

The command is the real one (its own private stack on free ports, a worker process, the towhee loop);
only the sizes are small. Speeds are never asserted: this 2-core machine is shared.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.bench.stats import PHOTO_KEYS, REQUIRED_KEYS
from tests.helpers import CLI, WEIGHTS, dataset_images

pytestmark = [pytest.mark.integration, pytest.mark.model]


@pytest.mark.skipif(not WEIGHTS.exists(), reason="needs the shared mobilenetv2_100 weights")
def test_bench_json_has_every_key(tmp_path: Path) -> None:
    report, stderr = _run_bench(tmp_path)
    missing = [k for k in (*REQUIRED_KEYS, *PHOTO_KEYS, "dedupe_ms_per_image") if k not in report]
    assert not missing, missing
    for key in (*REQUIRED_KEYS, *PHOTO_KEYS, "dedupe_ms_per_image"):
        value = report[key]
        assert isinstance(value, int | float) and math.isfinite(value) and value > 0, (key, value)
    _check_figures(report)
    _check_cpu_and_calls(report)
    assert report["n_photos"] == 6 and report["photo_freshness_unseen"] == 0
    assert report["photo_stages"]["fetch"]["count"] >= 6
    made = sorted((tmp_path / "photos").rglob("*.JPEG"))
    assert len(made) == 3  # cached: the three sources, under their own relative names
    # the private stack is gone: its state dir was removed after `stack down`
    found = re.search(r"private stack in (\S+) ", stderr)
    assert found, stderr[-2000:]
    assert not Path(found.group(1)).exists()


def _run_bench(tmp_path: Path) -> tuple[dict[str, Any], str]:
    """The real command with tiny sizes, in its own session; its report and its stderr."""
    images = tmp_path / "images"
    images.mkdir()
    for path in dataset_images(12):
        (images / f"{path.parent.name}-{path.name}").symlink_to(path)
    cmd = [
        *CLI,
        *("bench", "--json", "--images", str(images), "--query-images", str(images)),
        *("--n-ingest", "20", "--freshness-seconds", "3", "--queries", "5", "--n-seed", "6"),
        *("--batch-sizes", "1,4", "--floor-seconds", "0.2", "--timeout", "120"),
        # the photo workload, small: 3 photos of 1 MP (made into tmp_path, not the user's cache) under 6 keys
        *("--photos", "--photo-sources", "3", "--n-photos", "6", "--photo-megapixels", "1"),
        *("--photo-freshness-seconds", "2", "--photo-cache", str(tmp_path / "photos")),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOKALIKE_")}  # defaults, but the weights
    env.update(LOOKALIKE_WEIGHTS=str(WEIGHTS), LOOKALIKE_PRETRAINED="true", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=420)  # ~2-3 min; more when the shared cores are busy
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the bench unwinds and stops its stack
        out, err = proc.communicate(timeout=60)
        pytest.fail(f"bench did not finish:\n{err.decode()[-3000:]}")
    assert proc.returncode == 0, err.decode()[-3000:]
    return json.loads(out), err.decode()  # exactly one JSON object on stdout


def _check_figures(report: dict[str, Any]) -> None:
    """The figures agree with each other and with the run's sizes; every issue target is judged."""
    assert report["ingest_ratio"] == pytest.approx(report["ingest_ips"] / report["compute_floor_ips"], abs=0.002)
    assert report["speedup_vs_seed"] == pytest.approx(report["ingest_ips"] / report["seed_way_ips"], abs=0.01)
    assert report["freshness_p50_s"] <= report["freshness_p95_s"] <= report["freshness_max_s"]
    assert report["query_p50_ms"] <= report["query_p95_ms"]
    assert report["freshness_unseen"] == 0 and report["freshness_n"] >= 1
    assert report["n_queries"] == 5 and report["seed_n"] == 6 and report["n_ingest"] == 20
    assert 100 < report["worker_peak_rss_mb"] < 20_000
    assert set(report["targets"]) == {
        *("ingest_ratio", "freshness_p95_s", "query_p50_ms", "speedup_vs_seed", "cpu_overhead_ratio"),
        *("dedupe_ms_per_image", "worker_peak_rss_mb", "worker_ready_s"),
        *("photo_ingest_ips", "photo_freshness_p95_s"),
    }
    assert {t["batch"] for t in report["compute_floor_trials"]} == {1, 4}
    assert report["compute_floor_batch"] in (1, 4)
    assert 0 < report["query_search_p50_ms"] < report["query_p50_ms"]
    assert report["query_flushed_p50_ms"] > 0
    assert 0 <= report["ingest_first_batch_s"] <= report["ingest_s"]
    stages = report["stages"]
    for stage in ("fetch", "decode", "infer", "write"):
        assert stages[stage]["count"] > 0 and stages[stage]["seconds"] > 0, (stage, stages.get(stage))
    # the last commit may land just after the count is reached; by the end of (c) commits have happened
    commits = [p.get("commit", {}).get("count", 0) for p in (stages, report["stages_freshness"])]
    assert sum(commits) > 0, commits
    assert stages["fetch"]["count"] >= 20  # one fetch per image; 12 files repeated under 20 keys
    assert any("below the issue" in n for n in report["notes"])


def _check_cpu_and_calls(report: dict[str, Any]) -> None:
    """CPU ratios are the quotients of the figures they name; every server part is measured; the
    worker's Milvus calls are counted per stage."""
    for p in ("", "photo_"):
        assert report[f"{p}cpu_overhead_ratio"] == pytest.approx(
            report[f"{p}worker_cpu_ms_per_image"] / report[f"{p}floor_cpu_ms_per_image"], abs=0.002
        )
        servers = report[f"{p}servers_cpu_ms_per_image"]
        assert set(servers) == {"s3", "kafka", "milvus"}, servers  # events go from the filer to Kafka: no bridge
        assert all(isinstance(v, int | float) and v >= 0 for v in servers.values()), servers
        assert sum(servers.values()) > 0, servers
    assert report["photo_ingest_ratio"] == pytest.approx(
        report["photo_ingest_ips"] / report["photo_compute_floor_ips"], abs=0.002
    )
    calls = report["milvus_calls_per_batch"]
    assert calls["total"] > 0 and calls["total"] == pytest.approx(
        sum(v for k, v in calls.items() if k != "total"), abs=0.01
    )
    parts = report["worker_ready_parts_s"]
    assert parts and all(v >= 0 for v in parts.values()) and sum(parts.values()) <= report["worker_ready_s"] + 1.0
