"""Peak resident memory of ``lookalike backfill`` over a bucket of N tiny objects (issue 15's target).

    python -m infra.backfill_memory --objects 100000 [--json]

Starts a private stack (moto, Tansu, Milvus Lite on free ports), puts N objects of a few bytes
with no notifications (concurrent puts), indexes a quarter of them as stale vectors and adds N/10
orphan vectors, then runs ``lookalike backfill --dry-run --json`` as a child process and reads its
peak RSS (``VmHWM``, via ``resource.getrusage`` of the children). A dry run walks both sorted
streams in full without embedding, so what it measures is the merge's memory plus the process's
fixed cost (Python, torch and the model are loaded by the command). Everything is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from infra.stack import private_stack
from lookalike.embedder import TimmEmbedder
from lookalike.index import VectorIndex
from lookalike.rows import IndexRow, ModelTag
from lookalike.settings import Settings
from lookalike.store import ObjectStore


def fill(settings: Settings, n: int, dim: int, tag: ModelTag) -> None:
    """N tiny objects; every fourth one indexed with a stale etag; N/10 orphan vectors."""
    store = ObjectStore(settings)
    store.ensure_bucket(settings.bucket)
    store.stop_notifications(settings.bucket)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: store.put_bytes(settings.bucket, f"k/{i:08d}", b"x"), range(n)))
    index = VectorIndex(settings, timeout=120)
    index.open(tag, create=True)
    vec = np.ones(dim, dtype=np.float32) / np.sqrt(dim)
    ids = [f"k/{i:08d}" for i in range(0, n, 4)] + [f"k/{i:08d}-gone" for i in range(0, n, 10)]
    for start in range(0, len(ids), 1000):
        index.upsert(
            [IndexRow(f"{settings.bucket}/{k}", vec, "stale", 1, "x", 0, 0) for k in ids[start : start + 1000]]
        )
    index.flush()
    index.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    base = Settings().scoped(f"bfmem-{os.getpid()}")
    embedder = TimmEmbedder(base)
    embedder.load()  # the collection must carry the tag the backfill's own model load will compute
    tag = embedder.tag
    with private_stack(base, dict(os.environ), say=lambda m: print(m, file=sys.stderr)) as s:
        t0 = time.monotonic()
        fill(s, args.objects, tag.dim, tag)
        fill_s = time.monotonic() - t0
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "backfill", "--dry-run", "--json"],
            env={**os.environ, **s.as_env()},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        stdout = proc.stdout.read()
        # wait4 reaps exactly this child and gives its own peak RSS (RUSAGE_CHILDREN would also count
        # any other child reaped before, whatever it was)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in (0, 1):  # 1: some objects failed, still a report
            raise SystemExit(f"backfill --dry-run exited {proc.returncode}")
        run_s = time.monotonic() - t0
        peak_mb = usage.ru_maxrss / 1024
    report = {
        "objects": args.objects,
        "backfill": json.loads(stdout.strip().splitlines()[-1]),
        "backfill_peak_rss_mb": round(peak_mb, 1),
        "backfill_seconds": round(run_s, 1),
        "fill_seconds": round(fill_s, 1),
    }
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
