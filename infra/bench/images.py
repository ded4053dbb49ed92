"""The bench's images: files found on disk, read once into memory, spread over N upload keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lookalike.imaging import IMAGE_SUFFIXES


@dataclass(frozen=True)
class BenchImage:
    """One image file: its upload key and its bytes (read once, so disk is not in the timings)."""

    key: str
    data: bytes
    content_type: str


def image_files(root: Path) -> list[Path]:
    """Image files under ``root`` in a stable order (sorted paths; hidden files skipped)."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder of images")
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not any(s.startswith(".") for s in p.parts[-3:])
    )


def spread(files: Sequence[Path], n: int, root: Path, prefix: str) -> list[BenchImage]:
    """``n`` images under ``prefix/``; when there are fewer files, they repeat with a ``-rK`` suffix key."""
    if not files:
        raise FileNotFoundError(f"no images under {root}")
    cache: dict[Path, bytes] = {}
    out: list[BenchImage] = []
    for i in range(n):
        path = files[i % len(files)]
        data = cache.get(path)
        if data is None:
            data = cache[path] = path.read_bytes()
        rel = path.relative_to(root).as_posix()
        rounds = i // len(files)
        if rounds:
            stem, dot, ext = rel.rpartition(".")
            rel = f"{stem}-r{rounds}.{ext}" if dot else f"{rel}-r{rounds}"
        ctype = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
        out.append(BenchImage(f"{prefix}/{rel}", data, ctype))
    return out
