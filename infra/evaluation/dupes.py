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
higher threshold), i.e. the lowest threshold on the grid that reaches that precision unless a higher
one keeps the same recall. Progress goes to stderr; ``--json`` prints one object.

It is also how a model family gets its threshold (``lookalike.families``): ``--model`` runs it with
any ``LOOKALIKE_MODEL`` value (``open_clip:ViT-B-32`` with ``LOOKALIKE_WEIGHTS`` naming its weights),
and the output ends with the line that puts the result in force (``calibrate``). When no threshold
on the grid reaches the precision, it says so and exits 1: a threshold below it would mark distinct
images as copies. ``--random-init`` runs the plumbing with random weights; its number means nothing.
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
from lookalike.families import CALIBRATED_THRESHOLDS, family
from lookalike.imaging import decode_image
from lookalike.settings import Settings

DEFAULT_DATASET = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "reverse_image_search"
GRID = [round(0.5 + 0.01 * i, 2) for i in range(50)]  # 0.50 to 0.99: the thresholds tried


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


def choose(rows: list[dict[str, Any]], min_precision: float) -> dict[str, Any] | None:
    """Highest recall with precision >= ``min_precision``; ties go to the higher threshold. None when
    no row reaches the precision: the highest recall below it would be a threshold that misleads."""
    ok = [r for r in rows if r["precision"] >= min_precision]
    return max(ok, key=lambda r: (r["recall"], r["threshold"])) if ok else None


def calibrate(s: Scores, model: str, min_precision: float, thresholds: list[float] = GRID) -> dict[str, Any]:
    """The threshold ``choose`` picks on the curve of these scored pairs, and what puts it in force:
    ``set`` (one deployment: the variable) and ``record`` (every index of the family: the line for
    ``lookalike.families.CALIBRATED_THRESHOLDS``). ``threshold`` None when no threshold reaches it."""
    pick = choose(curve(s, thresholds), min_precision)
    fam = family(model)
    out: dict[str, Any] = {
        "model": model,
        "family": fam,
        "min_precision": min_precision,
        "family_threshold": CALIBRATED_THRESHOLDS.get(fam),
        "threshold": None,
        "precision": None,
        "recall": None,
        "set": None,
        "record": None,
    }
    if pick is not None:
        t = pick["threshold"]
        out |= {"threshold": t, "precision": pick["precision"], "recall": pick["recall"]}
        out |= {"set": f"LOOKALIKE_DUPLICATE_THRESHOLD={t}", "record": f'CALIBRATED_THRESHOLDS["{fam}"] = {t}'}
    return out


def calibration_lines(c: dict[str, Any]) -> list[str]:
    """What the run prints last: the threshold and its recall, and how to put it in force."""
    head = f"{c['model']} (family {c['family']})"
    if c["threshold"] is None:
        return [f"{head}: no threshold from {GRID[0]} to {GRID[-1]} reaches precision {c['min_precision']}"]
    lines = [
        f"{head}: threshold {c['threshold']} (precision {c['precision']}, recall {c['recall']}; "
        f"rule: highest recall with precision >= {c['min_precision']})",
    ]
    if c["family_threshold"] == c["threshold"]:
        return [*lines, f"the family's calibrated threshold is {c['family_threshold']} already: nothing to set"]
    was = "none" if c["family_threshold"] is None else c["family_threshold"]
    return [
        *lines,
        f"to use it, set {c['set']}",
        f"or record it for every {c['family']} model (now {was}) in lookalike/families.py: {c['record']}",
    ]


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
    pick: dict[str, Any] | None,
    *,
    gallery: int,
    min_precision: float,
) -> dict[str, Any]:
    """The run's JSON object: the chosen threshold, the evidence for it, the whole curve, and the
    calibration (``calibrate``); the chosen fields are None when no threshold reaches the precision."""
    chosen = pick or {"threshold": None, "precision": None, "recall": None}
    return {
        "model": embedder.tag.model,
        "weights": embedder.tag.weights,
        "gallery": gallery,
        "copies": len(s.copy_sim),
        "negatives": len(s.neg_sim),
        "rule": f"highest recall with precision >= {min_precision}",
        "threshold": chosen["threshold"],
        "precision": chosen["precision"],
        "recall": chosen["recall"],
        "recall_by_edit": recall_by_edit(s, chosen["threshold"]) if pick is not None else None,
        "copies_nearest_is_original": round(float(np.mean(s.copy_right)), 4),
        "negative_similarity_max": round(float(np.max(s.neg_sim)), 4),
        "curve": rows,
        "calibration": calibrate(s, embedder.tag.model, min_precision),
    }


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m infra.evaluation.dupes", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="folder with train/ and test/")
    p.add_argument("--per-class", type=int, default=2, help="originals per class that get edited copies")
    p.add_argument("--min-precision", type=float, default=0.995, help="the rule: highest recall at this precision")
    p.add_argument(
        "--model",
        default=None,
        help="a LOOKALIKE_MODEL value (mobilenetv2_100, open_clip:ViT-B-32); default: LOOKALIKE_MODEL. "
        "Its weights: LOOKALIKE_WEIGHTS, else the library's download",
    )
    p.add_argument("--random-init", action="store_true", help="random weights: plumbing only, the number means nothing")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p.parse_args(argv)


def run_settings(args: argparse.Namespace) -> Settings:
    """LOOKALIKE_* settings, with the model and weights the arguments ask for."""
    settings = Settings()
    update: dict[str, Any] = {}
    if args.model:
        update["model"] = args.model
    if args.random_init:
        update |= {"pretrained": False, "weights": None}
    return settings.model_copy(update=update) if update else settings


def edited_sources(train: list[Item], per_class: int) -> list[Item]:
    """The first ``per_class`` gallery images of every class (by key): the originals that get copies."""
    by_class: dict[str, list[Item]] = {}
    for it in train:
        by_class.setdefault(it.label, []).append(it)
    return [it for label in sorted(by_class) for it in sorted(by_class[label], key=lambda i: i.key)[:per_class]]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    settings = run_settings(args)
    data = load_dataset(args.dataset.resolve())

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    embedder = TimmEmbedder(settings)
    embedder.load()
    s = score(embedder, settings, data.train, edited_sources(data.train, args.per_class), data.test, say)
    rows = curve(s, GRID)
    pick = choose(rows, args.min_precision)
    report = build_report(embedder, s, rows, pick, gallery=len(data.train), min_precision=args.min_precision)
    if args.json:
        print(json.dumps(report))
    else:
        for r in rows:
            print(f"{r['threshold']:.2f}  P {r['precision']:.4f}  R {r['recall']:.4f}  F1 {r['f1']:.4f}")
        print("\n".join(calibration_lines(report["calibration"])))
    return 0 if pick is not None else 1


if __name__ == "__main__":
    raise SystemExit(main())
