"""How well "nearest other object >= threshold" finds near-duplicates: ``python -m infra.evaluation.dupes``.

The set is built from the sample data, in memory, with the worker's model and decoding:

* the **gallery** is every ``train/`` image (what a bucket already holds);
* **positives**: edited copies of ``--per-class`` gallery images per class (crop, resize, JPEG
  recompression, horizontal flip, small rotation, brightness), each saved as a JPEG as an upload
  would be. A copy is found when its nearest gallery image is its original with similarity >= t;
* **negatives**: distinct images of the same classes: each gallery image against the rest of the
  gallery (its own class's other images are there), and each ``test/`` image against the gallery.
  Marking any of them is a false pair.

For each threshold: precision = found / (found + false pairs), where a copy whose nearest is not its
original also counts as a false pair, and recall = found / copies. The default threshold is chosen
by a stated rule: the highest recall whose precision is at least ``--min-precision`` (ties: the
higher threshold). Progress goes to stderr; ``--json`` prints one object.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from infra.evaluation.dataset import Item, load_dataset
from lookalike.embedder import Embedder, TimmEmbedder
from lookalike.imaging import decode_image
from lookalike.settings import Settings

DEFAULT_DATASET = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "reverse_image_search"


def _crop(im: Image.Image) -> Image.Image:
    w, h = im.size
    return im.crop((w // 10, h // 10, w - w // 10, h - h // 10))  # keep the central 80 %


def _resize(im: Image.Image) -> Image.Image:
    return im.resize((max(1, im.width // 2), max(1, im.height // 2)), Image.Resampling.BILINEAR)


def _rotate(im: Image.Image) -> Image.Image:
    return im.rotate(8, resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))


# name -> (edit, JPEG quality it is saved with)
EDITS: dict[str, tuple[Callable[[Image.Image], Image.Image], int]] = {
    "crop": (_crop, 90),
    "resize": (_resize, 90),
    "jpeg": (lambda im: im, 30),
    "flip": (ImageOps.mirror, 90),
    "rotate": (_rotate, 90),
    "brightness": (lambda im: ImageEnhance.Brightness(im).enhance(1.3), 90),
}


def edited_copy(data: bytes, edit: str) -> bytes:
    """The JPEG bytes of one edit of an image (as a user would upload an edited copy)."""
    fn, quality = EDITS[edit]
    with Image.open(io.BytesIO(data)) as im:
        out = fn(ImageOps.exif_transpose(im).convert("RGB"))
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def embed_bytes(embedder: Embedder, blobs: list[bytes], settings: Settings, say: Callable[[str], None]) -> np.ndarray:
    """Unit vectors of images given as bytes, decoded exactly as the worker decodes them."""
    out: list[np.ndarray] = []
    step = max(1, settings.batch_size)
    for i in range(0, len(blobs), step):
        prepared = [
            embedder.prepare(decode_image(b, settings.max_image_pixels, min_side=embedder.decode_size))
            for b in blobs[i : i + step]
        ]
        out.append(embedder.embed_prepared(prepared))
        say(f"  embedded {min(i + step, len(blobs))}/{len(blobs)}")
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), dtype=np.float32)


@dataclass(frozen=True)
class Scores:
    """Per candidate: nearest-other similarity, and for copies whether that nearest is the original."""

    copy_sim: np.ndarray
    copy_right: np.ndarray
    copy_edit: list[str]
    neg_sim: np.ndarray


def curve(s: Scores, thresholds: list[float]) -> list[dict[str, Any]]:
    rows = []
    for t in thresholds:
        marked = s.copy_sim >= t
        found = int(np.sum(marked & s.copy_right))
        false = int(np.sum(marked & ~s.copy_right)) + int(np.sum(s.neg_sim >= t))
        precision = found / (found + false) if found + false else 1.0
        recall = found / len(s.copy_sim) if len(s.copy_sim) else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append(
            {
                "threshold": round(t, 3),
                "precision": round(precision, 4),
                "recall": round(recall, 4),
                "f1": round(f1, 4),
                "found": found,
                "false_pairs": false,
            }
        )
    return rows


def choose(rows: list[dict[str, Any]], min_precision: float) -> dict[str, Any]:
    """Highest recall with precision >= ``min_precision``; ties go to the higher threshold."""
    ok = [r for r in rows if r["precision"] >= min_precision] or rows
    return max(ok, key=lambda r: (r["recall"], r["threshold"]))


def score(
    embedder: Embedder,
    settings: Settings,
    gallery: list[Item],
    sources: list[Item],
    test: list[Item],
    say: Callable[[str], None],
) -> Scores:
    say(f"gallery: {len(gallery)} images")
    g = embed_bytes(embedder, [it.path.read_bytes() for it in gallery], settings, say)
    position = {it.key: i for i, it in enumerate(gallery)}
    copies = [(it, e) for it in sources for e in EDITS]
    say(f"copies: {len(copies)} ({len(sources)} originals x {len(EDITS)} edits)")
    c = embed_bytes(embedder, [edited_copy(it.path.read_bytes(), e) for it, e in copies], settings, say)
    say(f"test: {len(test)} distinct images")
    q = embed_bytes(embedder, [it.path.read_bytes() for it in test], settings, say)
    cs = c @ g.T
    best = np.argmax(cs, axis=1)
    right = np.array([best[i] == position[it.key] for i, (it, _) in enumerate(copies)], dtype=bool)
    gg = g @ g.T
    np.fill_diagonal(gg, -np.inf)  # a gallery image's nearest *other*
    neg = np.concatenate([gg.max(axis=1), (q @ g.T).max(axis=1) if len(q) else np.zeros(0)])
    return Scores(cs.max(axis=1), right, [e for _, e in copies], neg)


def recall_by_edit(s: Scores, threshold: float) -> dict[str, float]:
    """Per edit, the share of its copies found: why a threshold misses is usually one edit (resize)."""
    found = [
        (edit, bool(sim >= threshold and ok))
        for sim, ok, edit in zip(s.copy_sim, s.copy_right, s.copy_edit, strict=True)
    ]
    return {e: round(float(np.mean([hit for edit, hit in found if edit == e])), 4) for e in EDITS}


def build_report(
    embedder: Embedder,
    s: Scores,
    rows: list[dict[str, Any]],
    pick: dict[str, Any],
    *,
    gallery: int,
    min_precision: float,
) -> dict[str, Any]:
    """The run's JSON object: the chosen threshold, the evidence for it, and the whole curve."""
    return {
        "model": embedder.tag.model,
        "weights": embedder.tag.weights,
        "gallery": gallery,
        "copies": len(s.copy_sim),
        "negatives": len(s.neg_sim),
        "rule": f"highest recall with precision >= {min_precision}",
        "threshold": pick["threshold"],
        "precision": pick["precision"],
        "recall": pick["recall"],
        "recall_by_edit": recall_by_edit(s, pick["threshold"]),
        "copies_nearest_is_original": round(float(np.mean(s.copy_right)), 4),
        "negative_similarity_max": round(float(np.max(s.neg_sim)), 4),
        "curve": rows,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m infra.evaluation.dupes", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="folder with train/ and test/")
    p.add_argument("--per-class", type=int, default=2, help="originals per class that get edited copies")
    p.add_argument("--min-precision", type=float, default=0.995, help="the rule: highest recall at this precision")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    settings = Settings()
    data = load_dataset(args.dataset.resolve())
    by_class: dict[str, list[Item]] = {}
    for it in data.train:
        by_class.setdefault(it.label, []).append(it)
    sources = [
        it for label in sorted(by_class) for it in sorted(by_class[label], key=lambda i: i.key)[: args.per_class]
    ]

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    embedder = TimmEmbedder(settings)
    embedder.load()
    s = score(embedder, settings, data.train, sources, data.test, say)
    thresholds = [round(0.5 + 0.01 * i, 2) for i in range(50)]
    rows = curve(s, thresholds)
    pick = choose(rows, args.min_precision)
    report = build_report(embedder, s, rows, pick, gallery=len(data.train), min_precision=args.min_precision)
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"threshold {pick['threshold']} ({report['rule']}): precision {pick['precision']}, recall {pick['recall']}"
        )
        for r in rows:
            print(f"{r['threshold']:.2f}  P {r['precision']:.4f}  R {r['recall']:.4f}  F1 {r['f1']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
