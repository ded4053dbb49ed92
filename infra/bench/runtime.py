"""Model-only speed of each runtime: ms per image at a few batch sizes, torch vs ONNX Runtime.

Only the forward pass (preprocessed arrays in, features out), so decode, towhee and I/O do not blur
it. Each figure is the median of ``--repeats`` timed passes after warm-up; the medians resist the
other processes on a shared machine better than means do. Also prints the runtimes' largest cosine
distance on the batch, the figure ``auto`` decides by.

    LOOKALIKE_WEIGHTS=... python -m infra.bench.runtime [--batches 1,8] [--repeats 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.embedder import TimmEmbedder
from lookalike.imaging import IMAGE_SUFFIXES, decode_image
from lookalike.runtime import cosine_distance
from lookalike.settings import Settings

DEFAULT_IMAGES = Path(__file__).resolve().parents[3] / "shared/datasets/reverse_image_search/train"


def time_forward(runner: Any, batch: Any, repeats: int) -> float:
    """Median milliseconds per image of ``runner(batch)``."""
    for _ in range(3):
        runner(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner(batch)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000 / len(batch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    import torch

    embedders = {}
    for runtime in ("torch", "onnx"):
        emb = TimmEmbedder(Settings(runtime=runtime))
        emb.load()
        embedders[runtime] = emb
    sizes = [int(b) for b in args.batches.split(",")]
    paths = sorted(p for p in args.images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[: max(sizes)]
    images = [embedders["torch"].prepare(decode_image(p.read_bytes())) for p in paths]
    out: dict[str, Any] = {"model": embedders["torch"].model_name, "threads": torch.get_num_threads()}
    for b in sizes:
        batch = np.stack(images[:b])
        for runtime, emb in embedders.items():
            out[f"{runtime}_ms_per_image_b{b}"] = round(time_forward(emb.runner, batch, args.repeats), 2)
    full = np.stack(images)
    out["cosine_distance"] = cosine_distance(embedders["onnx"].runner(full), embedders["torch"].runner(full))
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
