"""Bulk upload: files and folders into the bucket, concurrently, with a progress bar.

Files whose first bytes match no image format are left out before anything is sent (``split_images``):
the workers would only dead-letter them, and the upload would have said "uploaded" all the same.
Only the header is read, so a truncated image still goes up; the workers then say why it fails.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from lookalike.store import ObjectStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadItem:
    path: Path
    key: str
    content_type: str


def plan_upload(paths: Iterable[Path], prefix: str = "") -> list[UploadItem]:
    """Keys are paths relative to each folder given (a file given directly keeps its name)."""
    items: list[UploadItem] = []
    prefix = prefix.strip("/")
    for root in paths:
        root = Path(root)
        if not root.exists():
            raise FileNotFoundError(f"{root} does not exist")
        for path, rel in _walk(root):
            key = str(PurePosixPath(prefix, rel)) if prefix else rel
            ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            items.append(UploadItem(path, key, ctype))
    return items


def image_problem(path: Path) -> str | None:
    """Why ``path`` is clearly no image, or None when its header is one Pillow reads."""
    try:
        with Image.open(path):  # reads the header only
            return None
    except UnidentifiedImageError:
        return "empty file" if path.stat().st_size == 0 else "not an image (unrecognised format)"
    except (OSError, SyntaxError, ValueError) as exc:
        return f"unreadable: {exc}"


def split_images(items: list[UploadItem]) -> tuple[list[UploadItem], list[tuple[UploadItem, str]]]:
    """The items that look like images, and the others with the reason each is left out."""
    images: list[UploadItem] = []
    refused: list[tuple[UploadItem, str]] = []
    for item in items:
        problem = image_problem(item.path)
        if problem is None:
            images.append(item)
        else:
            refused.append((item, problem))
    return images, refused


def _walk(root: Path) -> Iterator[tuple[Path, str]]:
    if root.is_file():
        yield root, root.name
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts):
            yield path, path.relative_to(root).as_posix()


def upload(
    store: ObjectStore, bucket: str, items: list[UploadItem], concurrency: int = 8, progress: bool = True
) -> int:
    """Upload everything; returns the number of objects written."""
    with (
        ThreadPoolExecutor(max_workers=concurrency) as pool,
        tqdm(total=len(items), unit="img", disable=not progress, desc="upload") as bar,
    ):
        futures = [pool.submit(store.put_file, bucket, it.key, it.path, it.content_type) for it in items]
        for f in futures:
            f.result()
            bar.update(1)
    return len(items)
