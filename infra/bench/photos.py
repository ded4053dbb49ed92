"""The photo workload's images: 12 MP JPEGs made (once, cached) from the bench's image folder.

``infra.photos.make_photos`` does the making; this module picks which source images (evenly over
the sorted files, so every class shows up), keeps the cache per recipe, and reads the photos into
``BenchImage``s like the thumbnails.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from infra.bench.images import BenchImage, spread
from infra.photos import make_photos


def default_cache() -> Path:
    return Path.home() / ".cache" / "lookalike" / "photos"


def pick(files: Sequence[Path], n: int) -> list[Path]:
    """``n`` files spread evenly over ``files`` (all of them when there are fewer)."""
    if n >= len(files):
        return list(files)
    step = len(files) / n
    return [files[int(i * step)] for i in range(n)]


def photo_images(
    files: Sequence[Path],
    root: Path,
    sources: int,
    n: int,
    megapixels: float,
    cache: Path,
    say: Callable[[str], None] = lambda _: None,
) -> list[BenchImage]:
    """``n`` upload keys over ``sources`` distinct photos made from ``files`` (paths under ``root``).

    The photos live in ``cache/<megapixels>mp`` keyed by their path under ``root``; a later run with
    the same recipe reuses them (make_photos only makes what is missing).
    """
    chosen = pick(files, sources)
    dest = cache / f"{megapixels:g}mp"
    with tempfile.TemporaryDirectory(prefix="lookalike-photo-src-") as tmp:
        src = Path(tmp)
        for path in chosen:  # a tree of links naming only the chosen files, as make_photos mirrors a folder
            link = src / path.relative_to(root)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path.resolve())
        make_photos(src, dest, megapixels=megapixels, say=say)
    made = [dest / p.relative_to(root) for p in chosen]
    return spread(made, n, dest, "photos")
