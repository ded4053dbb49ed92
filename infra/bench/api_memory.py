"""Peak resident memory of ``lookalike api`` serving searches (issue 20's API target, 400 MB).

    python -m infra.bench.api_memory [--vectors 2000] [--searches 50] [--images DIR] [--json]

Starts a private stack, fills its collection with ``--vectors`` random unit vectors under the
model's tag, runs ``lookalike api`` as a child (its own process image: the figure is the child's
``VmHWM``, read from ``/proc`` before it is stopped), sends ``--searches`` searches by image (the
sample images, in turn) and stops it with SIGTERM. ``LOOKALIKE_RUNTIME=torch`` measures the torch path for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np

from infra.bench.memory import status_mb
from infra.local.parts import free_port
from infra.local.stack import private_stack
from lookalike.embedder import TimmEmbedder
from lookalike.imaging import IMAGE_SUFFIXES
from lookalike.index import VectorIndex
from lookalike.rows import IndexRow, ModelTag
from lookalike.settings import Settings

DEFAULT_IMAGES = Path(__file__).resolve().parents[3] / "shared/datasets/reverse_image_search/test"


def fill(settings: Settings, tag: ModelTag, n: int) -> None:
    rng = np.random.default_rng(0)
    index = VectorIndex(settings, timeout=120)
    index.open(tag, create=True)
    for start in range(0, n, 1000):
        vecs = rng.standard_normal((min(1000, n - start), tag.dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        index.upsert([IndexRow(f"{settings.bucket}/k{start + i}", v, "e", 1, "x", 0, 0) for i, v in enumerate(vecs)])
    index.flush()
    index.close()


def search(url: str, token: str, data: bytes) -> None:
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="q.jpg"\r\n'
        f"Content-Type: image/jpeg\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"{url}/v1/search?k=10",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request, timeout=120) as r:
        r.read()


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"the API exited {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                return time.monotonic() - start
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the API did not answer /healthz")


def measure(settings: Settings, images: list[Path], searches: int) -> dict[str, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "infra.cli", "api", "--port", str(port)]
    proc = subprocess.Popen(cmd, env={**os.environ, **settings.as_env()}, stderr=subprocess.DEVNULL)
    try:
        healthy_s = wait_healthy(url, proc)
        token = settings.api_token.get_secret_value()
        for i in range(searches):
            search(url, token, images[i % len(images)].read_bytes())
        rss, peak = status_mb(proc.pid, "VmRSS") or 0.0, status_mb(proc.pid, "VmHWM") or 0.0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    return {"api_peak_rss_mb": round(peak, 1), "api_rss_mb": round(rss, 1), "api_healthy_s": round(healthy_s, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vectors", type=int, default=2000)
    ap.add_argument("--searches", type=int, default=50)
    ap.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    images = sorted(p for p in args.images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[: args.searches]
    base = Settings().scoped(f"apimem-{os.getpid()}")
    embedder = TimmEmbedder(base)
    embedder.load()  # the collection carries the tag the API's own model load computes
    tag, runtime = embedder.tag, embedder.runtime
    del embedder
    with private_stack(base, dict(os.environ), say=lambda m: print(m, file=sys.stderr)) as s:
        fill(s, tag, args.vectors)
        out = {
            "runtime": runtime,
            "vectors": args.vectors,
            "searches": args.searches,
            **measure(s, images, args.searches),
        }
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
