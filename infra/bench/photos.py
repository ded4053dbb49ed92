"""Phone-photo copies of an image folder: what people actually upload, for the eval and the bench.

The sample dataset is ImageNet thumbnails (about 500x375); phones upload 12-megapixel, often
EXIF-rotated JPEGs, where decoding costs more than the model. ``make_photos`` mirrors a folder
(``train/<class>/*``, ``test/<class>/*`` and any csv beside them) with every image upscaled to about
12 MP, saved as JPEG quality 90, and every third one stored sideways or upside down with the EXIF
orientation that turns it upright again, as phones do. Decoders that honour EXIF see the same upright
picture as the original, so accuracy on the copy is comparable with accuracy on the source.

The output is cached: a manifest records the recipe, and files already made are kept, so a second
call (``lookalike bench --photos`` after an eval) costs a directory listing. ``photo_images`` is the
bench's photo workload: it picks the source images (evenly over the sorted files, so every class
shows up), keeps the cache per recipe, and reads the photos into ``BenchImage``s like the thumbnails.

    python -m infra.bench.photos SOURCE DEST [--megapixels 12] [--quality 90]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image

from infra.bench.images import BenchImage, spread

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
MANIFEST = ".photos.json"
RECIPE_VERSION = 1
# EXIF orientation -> how the stored pixels are turned so that applying the tag shows them upright
ORIENTATIONS = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270, 3: Image.Transpose.ROTATE_180}


def photo_size(size: tuple[int, int], megapixels: float) -> tuple[int, int]:
    """``size`` scaled, aspect kept, to about ``megapixels`` (500x375 -> 4032x3024 at 12.19 MP)."""
    scale = math.sqrt(megapixels * 1_000_000 / (size[0] * size[1]))
    return round(size[0] * scale), round(size[1] * scale)


def orientation_for(index: int, rotate_every: int) -> int | None:
    """Every ``rotate_every``-th image carries an EXIF orientation, cycling through 6, 8 and 3."""
    if rotate_every <= 0 or index % rotate_every != rotate_every - 1:
        return None
    tags = list(ORIENTATIONS)
    return tags[(index // rotate_every) % len(tags)]


def make_photo(src: Path, dest: Path, *, megapixels: float, quality: int, orientation: int | None) -> None:
    """One photo: upscaled (bicubic), turned to match ``orientation``, written atomically."""
    with Image.open(src) as opened:
        img = opened.convert("RGB")
    img = img.resize(photo_size(img.size, megapixels), Image.Resampling.BICUBIC)
    exif = Image.Exif()
    if orientation is not None:
        img = img.transpose(ORIENTATIONS[orientation])
        exif[0x0112] = orientation
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    img.save(tmp, "JPEG", quality=quality, exif=exif.tobytes())
    os.replace(tmp, dest)


def make_photos(
    source: Path,
    dest: Path,
    *,
    megapixels: float = 12.0,
    quality: int = 90,
    rotate_every: int = 3,
    say: Callable[[str], None] = lambda _: None,
) -> Path:
    """Mirror ``source`` into ``dest`` as phone photos (see the module docstring); returns ``dest``.

    Images keep their relative path and name (a ``.JPEG`` stays ``.JPEG`` even when it was a PNG), so
    a csv naming them stays valid and is copied as is. Re-running with the same recipe only makes
    what is missing; another recipe starts over.
    """
    recipe = {"version": RECIPE_VERSION, "megapixels": megapixels, "quality": quality, "rotate_every": rotate_every}
    manifest = dest / MANIFEST
    if dest.exists() and (not manifest.is_file() or json.loads(manifest.read_text()) != recipe):
        if any(dest.iterdir()) and not manifest.is_file():
            raise FileExistsError(f"{dest} exists and was not made by make_photos; choose another folder")
        shutil.rmtree(dest)
    dest.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps(recipe))
    files = sorted(p for p in source.rglob("*") if p.is_file())
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    for other in (p for p in files if p.suffix.lower() not in IMAGE_SUFFIXES):
        target = dest / other.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(other, target)
    made = 0
    for i, src in enumerate(images):
        target = dest / src.relative_to(source)
        if not target.is_file():
            orientation = orientation_for(i, rotate_every)
            make_photo(src, target, megapixels=megapixels, quality=quality, orientation=orientation)
            made += 1
            if made % 50 == 0:
                say(f"  photos: made {made}, {i + 1}/{len(images)} done")
    say(f"photos: {len(images)} in {dest} ({made} new)")
    return dest


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--quality", type=int, default=90)
    parser.add_argument("--rotate-every", type=int, default=3, help="every N-th image gets an EXIF orientation")
    args = parser.parse_args(argv)
    make_photos(
        args.source,
        args.dest,
        megapixels=args.megapixels,
        quality=args.quality,
        rotate_every=args.rotate_every,
        say=lambda line: print(line, file=sys.stderr, flush=True),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
