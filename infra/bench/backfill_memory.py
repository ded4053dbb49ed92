"""Peak resident memory of ``lookalike backfill`` over a bucket of N objects (issue 15's target).

    python -m infra.bench.backfill_memory --objects 100000 [--dry-run] [--json]

Starts a private stack (moto, Tansu, Milvus Lite on free ports) and fills its bucket with N
objects, notifications off: every ``--image-every``-th object is a small real JPEG (each one
different), the rest are one-byte objects that are not images. Every fourth object gets a stale
vector and N/10 vectors have no object. Then it runs ``lookalike backfill --json`` (or
``--dry-run``) as a child process and reports the child's own peak RSS (``VmHWM``, written by
``infra.bench.peak_rss`` at exit).

A real run loads the model, walks both sorted streams in full, fetches every object that is
missing or stale, embeds and writes the images, dead-letters the rest (each with its reason) and
removes the orphans: every stage of a backfill runs, while the embedding time stays small. A dry
run only merges the two streams. Everything is removed afterwards.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from infra.local.stack import private_stack
from lookalike.embedder import TimmEmbedder
from lookalike.index import VectorIndex
from lookalike.rows import IndexRow, ModelTag
from lookalike.settings import Settings
from lookalike.store import ObjectStore


def small_jpeg(seed: int, side: int = 96) -> bytes:
    """A distinct little JPEG (smooth colour noise), so near-duplicate marking does not merge them."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    img = Image.fromarray(coarse).resize((side, side), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def key(i: int) -> str:
    return f"k/{i:08d}"


def fill(settings: Settings, n: int, image_every: int, tag: ModelTag) -> None:
    """N objects (a JPEG every ``image_every``-th), every fourth indexed stale, N/10 orphan vectors."""
    store = ObjectStore(settings)
    store.ensure_bucket(settings.bucket)  # its events reach the private topic, which no worker reads

    def put(i: int) -> None:
        if image_every and i % image_every == 0:
            store.put_bytes(settings.bucket, key(i), small_jpeg(i), "image/jpeg")
        else:
            store.put_bytes(settings.bucket, key(i), b"x")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(n)))
    index = VectorIndex(settings, timeout=120)
    index.open(tag, create=True)
    vec = np.ones(tag.dim, dtype=np.float32) / np.sqrt(tag.dim)
    ids = [key(i) for i in range(0, n, 4)] + [f"{key(i)}-gone" for i in range(0, n, 10)]
    for start in range(0, len(ids), 1000):
        index.upsert(
            [IndexRow(f"{settings.bucket}/{k}", vec, "stale", 1, "x", 0, 0) for k in ids[start : start + 1000]]
        )
    index.flush()
    index.close()


def run_backfill(settings: Settings, dry_run: bool) -> tuple[dict[str, object], float, float]:
    """``lookalike backfill --json`` in a child; its report, its own peak RSS in MB and its seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp, "peak")
        args = ["backfill", "--json", *(["--dry-run"] if dry_run else [])]
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "infra.bench.peak_rss", str(peak_file), *args],
            env={**os.environ, **settings.as_env()},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            check=False,
        )
        seconds = time.monotonic() - t0
        if proc.returncode not in (0, 1):  # 1: some objects failed (the non-images), still a report
            raise SystemExit(f"backfill exited {proc.returncode}")
        return json.loads(proc.stdout.strip().splitlines()[-1]), float(peak_file.read_text()), seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--image-every", type=int, default=100, help="every n-th object is a JPEG (0: none)")
    ap.add_argument("--dry-run", action="store_true", help="measure a dry run (no model, no writes)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    base = Settings().scoped(f"bfmem-{os.getpid()}")
    embedder = TimmEmbedder(base)
    embedder.load()  # the collection must carry the tag the backfill's own model load will compute
    tag = embedder.tag
    del embedder
    with private_stack(base, dict(os.environ), say=lambda m: print(m, file=sys.stderr)) as s:
        t0 = time.monotonic()
        fill(s, args.objects, args.image_every, tag)
        fill_s = time.monotonic() - t0
        report, peak_mb, run_s = run_backfill(s, args.dry_run)
    out = {
        "objects": args.objects,
        "images": len(range(0, args.objects, args.image_every)) if args.image_every else 0,
        "backfill": report,
        "backfill_peak_rss_mb": round(peak_mb, 1),
        "backfill_seconds": round(run_s, 1),
        "fill_seconds": round(fill_s, 1),
    }
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
