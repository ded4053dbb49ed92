"""A small indexed slice of the sample dataset, shared by the AppTest and browser tests.

Keys are ``<class>/<file>``, so a neighbour's class is the first path segment of its key.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image, ImageEnhance, ImageOps

from tests.helpers import DATASET, REPO, wait_for

APP = str(REPO / "dashboard" / "app.py")

CLASSES = ("Afghan_hound", "ambulance", "banana", "basketball", "bicycle-built-for-two", "brain_coral")
PER_CLASS = 5
JUNK_KEY = "junk/not-an-image.jpg"


@dataclass(frozen=True)
class Sample:
    keys: dict[str, Path]  # key -> local file

    def path(self, key: str) -> Path:
        return self.keys[key]


def index_sample(pipeline: object, classes: tuple[str, ...] = CLASSES, per_class: int = PER_CLASS) -> Sample:
    """Upload ``per_class`` training images of each class plus one junk file (a dead letter);
    return once every image is indexed and the junk file has been dead-lettered."""
    from tests.helpers import topic_messages

    settings = pipeline.settings  # type: ignore[attr-defined]
    store = pipeline.store  # type: ignore[attr-defined]
    keys: dict[str, Path] = {}
    for cls in classes:
        for path in sorted((DATASET / "train" / cls).iterdir())[:per_class]:
            keys[f"{cls}/{path.name}"] = path
    pipeline.start_worker()  # type: ignore[attr-defined]
    for key, path in keys.items():
        store.put_file(settings.bucket, key, path, "image/jpeg")
    store.put_bytes(settings.bucket, JUNK_KEY, b"this is text, not a JPEG", "image/jpeg")
    want = {f"{settings.bucket}/{k}" for k in keys}
    wait_for(lambda: set(pipeline.indexed()) == want, 180, interval=1.0, what="sample indexed")  # type: ignore[attr-defined]
    wait_for(
        lambda: any(
            (k or "").endswith(JUNK_KEY)
            for k, _ in topic_messages(settings.kafka_bootstrap, settings.dead_letter_topic)
        ),
        60,
        interval=0.5,
        what="the junk file's dead letter",
    )
    return Sample(keys)


def use_settings(monkeypatch: pytest.MonkeyPatch, settings: object) -> None:
    """The app builds ``Settings()`` from the environment, as it does under ``lookalike dashboard``.

    The live panel's snapshot is shared for a few seconds by every session of the process; a test
    starts from a fresh one, as a dashboard started for it would."""
    from dashboard.resources import live_snapshot

    live_snapshot.clear()
    for name, value in settings.as_env().items():  # type: ignore[attr-defined]
        monkeypatch.setenv(name, value)


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header for a ``width`` x ``height`` image: a decompression bomb in 100 bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


# ---------------------------------------------------------------- near-duplicates
DUP_CLASSES = ("ambulance", "brain_coral", "banana")
DUP_PER_CLASS = 3
DUP_THRESHOLD = 0.9  # fixed here: the edits below score 0.94-0.99 against their originals, distinct images < 0.7


@dataclass(frozen=True)
class DuplicateSample:
    keys: dict[str, bytes]  # key -> the bytes uploaded
    copies: dict[str, str]  # copy key -> original key

    def groups(self) -> list[list[str]]:
        """The expected groups: each original with its copy, sorted like ``find_groups`` sorts them."""
        return sorted(sorted([original, copy]) for copy, original in self.copies.items())


def edited_copy(data: bytes) -> bytes:
    """A mirrored, 10% brighter JPEG re-encode of ``data``: an edited copy, not the same bytes."""
    image = ImageOps.mirror(Image.open(io.BytesIO(data)).convert("RGB"))
    out = io.BytesIO()
    ImageEnhance.Brightness(image).enhance(1.1).save(out, format="JPEG", quality=85)
    return out.getvalue()


def index_duplicates(pipeline: object) -> DuplicateSample:
    """Upload three images of each of three classes, then edited copies of the first ambulance and
    the first brain coral; return once the copies are indexed and marked (by the real worker)."""
    settings = pipeline.settings  # type: ignore[attr-defined]
    store = pipeline.store  # type: ignore[attr-defined]
    keys: dict[str, bytes] = {}
    for cls in DUP_CLASSES:
        for path in sorted((DATASET / "train" / cls).iterdir())[:DUP_PER_CLASS]:
            keys[f"{cls}/{path.name}"] = path.read_bytes()
    copies = {}
    for cls in DUP_CLASSES[:2]:
        original = next(k for k in keys if k.startswith(f"{cls}/"))
        copies[f"{cls}/edited-copy.jpg"] = original
    pipeline.start_worker()  # type: ignore[attr-defined]
    for key, data in keys.items():  # originals first, so the copies are the ones marked
        store.put_bytes(settings.bucket, key, data, "image/jpeg")
    want = {f"{settings.bucket}/{k}" for k in keys}
    wait_for(lambda: set(pipeline.indexed()) == want, 180, interval=1.0, what="originals indexed")  # type: ignore[attr-defined]
    for copy, original in copies.items():
        keys[copy] = edited_copy(keys[original])
        store.put_bytes(settings.bucket, copy, keys[copy], "image/jpeg")
    want |= {f"{settings.bucket}/{k}" for k in copies}
    wait_for(lambda: set(pipeline.indexed()) == want, 180, interval=1.0, what="copies indexed")  # type: ignore[attr-defined]
    return DuplicateSample(keys, copies)
