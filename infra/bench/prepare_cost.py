"""Measure (not assert) what preparing and embedding extreme shapes costs, before and after bounding.

``before`` runs timm's own transform (resize the shorter side, then crop), as ``TimmEmbedder.prepare``
did; ``after`` runs ``TimmEmbedder.embed`` as it is now. Each case runs in its own process, after the
model is loaded and warmed up, and reports wall time and the rise in peak RSS over the warm process::

    .venv/bin/python -m infra.bench.prepare_cost            # every case, before and after
    .venv/bin/python -m infra.bench.prepare_cost after      # only the bounded path
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from infra.bench import memory

SHAPES = [(20000, 1), (1, 20000), (60000, 2), (60000, 10), (10, 60000)]


def status_mb(field: str) -> float:
    """A ``/proc/self/status`` memory field (VmRSS, VmHWM) in MB."""
    value = memory.status_mb(os.getpid(), field)
    if value is None:
        raise KeyError(field)
    return value


def one(mode: str, width: int, height: int) -> dict[str, object]:
    """Decode and embed one single-colour PNG of ``width`` x ``height`` in this process."""
    from lookalike.embedder import TimmEmbedder
    from lookalike.imaging import BadImage, decode_image
    from lookalike.settings import Settings

    emb = TimmEmbedder(Settings())  # the model and weights of the environment (LOOKALIKE_WEIGHTS offline)
    emb.load()
    emb.embed([Image.new("RGB", (500, 375), (90, 120, 30))])  # warm: first-call allocations are not the image's
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, "PNG")
    data = buf.getvalue()
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS starts again from here
    base = status_mb("VmRSS")
    start = time.perf_counter()
    outcome = "embedded"
    try:
        image = decode_image(data, min_side=emb.decode_size)
        if mode == "before":
            emb.embed_prepared([emb.transform.transform(image).numpy()])
        else:
            emb.embed([image])
    except BadImage as exc:
        outcome = f"refused: {exc}"
    seconds = time.perf_counter() - start
    return {"mode": mode, "shape": f"{width}x{height}", "bytes": len(data), "seconds": round(seconds, 3),
            "peak_rss_rise_mb": round(status_mb("VmHWM") - base, 1), "outcome": outcome}  # fmt: skip


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:
        print(json.dumps(one(argv[1], int(argv[2]), int(argv[3]))))
        return 0
    modes = argv or ["before", "after"]
    for mode in modes:
        for width, height in SHAPES:
            cmd = [sys.executable, "-m", "infra.bench.prepare_cost", "--one", mode, str(width), str(height)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            print(out.stdout.strip() or out.stderr.strip().splitlines()[-1], flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
