"""The exported model on disk: an ONNX file beside its tag, so serving needs no torch.

``lookalike model export`` (or the first load where torch is installed) writes, under
``LOOKALIKE_MODEL_CACHE``, one folder per model and weights::

    onnx-v2/<model>/<weights>/tag.json          model, weights, dim, sha256, data config, ...
    onnx-v2/<model>/<weights>/model-<sha>.onnx  the graph, named by its content
    onnx-v2/<model>/<weights>/text-<sha>.onnx   a CLIP model's text tower, and beside it
    onnx-v2/<model>/<weights>/vocab-<sha>.txt.gz  the tokenizer's vocabulary (no open_clip to serve)

The ONNX file is never overwritten: a new export writes a new file and then replaces ``tag.json``
(both atomically), so a worker reading while another exports sees one whole pair. Reading checks
what serving relies on: the tag names the model and weights asked for, and the file's sha256 is the
one recorded. A missing, corrupt or mismatched export is a ``ModelLoadError`` that says what is
wrong and which command makes it; nothing is downloaded or re-exported behind the user's back.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lookalike.errors import LookalikeError
from lookalike.families import OPEN_CLIP, family
from lookalike.rows import ModelTag
from lookalike.settings import Settings

EXPORT_VERSION = 2  # bump when the export recipe changes, so old exports are not reused
EXPORT_COMMAND = "lookalike model export"
MAX_COSINE_DISTANCE = 1e-3  # beyond this from torch's vectors, ONNX Runtime's are "other vectors"


class ModelLoadError(LookalikeError):
    """The model or its weights could not be loaded."""


class ExportMissing(ModelLoadError):
    """No export for this model and weights yet."""


@dataclass(frozen=True)
class Exported:
    """One export's tag: what it embeds with, and what was checked when it was made."""

    model: str
    weights: str
    dim: int
    sha256: str
    onnx: str  # file name, beside tag.json
    data_config: dict[str, Any]
    distance: float  # largest 1 - cos against torch on the probe batch
    made_with: dict[str, str] = field(default_factory=dict)  # torch/timm/opset versions, for the record
    # a CLIP model's text tower: {"onnx", "sha256", "vocab", "vocab_sha256", "context_length"}; {} for
    # a model that embeds images only
    text: dict[str, Any] = field(default_factory=dict)
    folder: Path = Path()

    @property
    def path(self) -> Path:
        return self.folder / self.onnx

    @property
    def text_path(self) -> Path | None:
        """The text tower's graph, beside the image tower's; None for an image-only model."""
        return self.folder / self.text["onnx"] if self.text else None

    @property
    def vocab_path(self) -> Path | None:
        """The tokenizer's vocabulary the text tower reads with (a copy of open_clip's)."""
        return self.folder / self.text["vocab"] if self.text else None

    @property
    def differs(self) -> bool:
        """ONNX Runtime's vectors are not torch's: a collection must not mix the two."""
        return self.distance > MAX_COSINE_DISTANCE

    @property
    def tag(self) -> ModelTag:
        """The index tag of the vectors it makes: ``+onnx`` marks vectors that differ from torch's."""
        return ModelTag(model=self.model, weights=self.weights + ("+onnx" if self.differs else ""), dim=self.dim)


def weights_tag(settings: Settings) -> str:
    """Names where the weights came from, so the index can refuse vectors of other weights."""
    if settings.weights is not None:
        path = Path(settings.weights).expanduser()
        if not path.is_file():
            raise ModelLoadError(f"LOOKALIKE_WEIGHTS={path} is not a file")
        return file_tag(path)
    if not settings.pretrained:
        return "random-init:seed0"
    return "open_clip-pretrained" if family(settings.model) == OPEN_CLIP else "timm-pretrained"


def file_tag(path: Path) -> str:
    """``file:<name>:<sha256[:12]>``: a checkpoint by name and content, so a copy elsewhere matches
    it and an edited file of the same name does not (``lookalike.targets`` finds files by it)."""
    return f"file:{path.name}:{sha256_of(path)[:12]}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "_"


def export_folder(cache: Path, model: str, weights: str) -> Path:
    """Where the export of ``model`` with ``weights`` (a ``weights_tag``) lives in ``cache``."""
    return cache.expanduser() / f"onnx-v{EXPORT_VERSION}" / _slug(model) / _slug(weights)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_export(cache: Path, model: str, weights: str) -> Exported:
    """The verified export for ``model`` and ``weights``. Raises ``ExportMissing`` when there is none,
    ``ModelLoadError`` when it is unreadable, corrupt or tagged for other weights."""
    folder = export_folder(cache, model, weights)
    tag_file = folder / "tag.json"
    asked = f"{model} with weights {weights}"
    if not tag_file.is_file():
        raise ExportMissing(
            f"no exported model for {asked} in {folder}: make it with `{EXPORT_COMMAND}` "
            "(where torch and timm are installed: pip install '.[model]'), or share that folder"
        )
    try:
        raw = json.loads(tag_file.read_text())
        exported = Exported(**{k: v for k, v in raw.items() if k != "folder"}, folder=folder)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelLoadError(f"{tag_file} is unreadable ({exc}); remake it with `{EXPORT_COMMAND} --force`") from None
    if (exported.model, exported.weights) != (model, weights):
        raise ModelLoadError(
            f"{tag_file} is tagged {exported.model} with weights {exported.weights}, but {asked} was asked "
            f"for; remake it with `{EXPORT_COMMAND} --force`"
        )
    _verify(exported.path, exported.sha256, tag_file)
    if exported.text:
        _verify(exported.folder / exported.text["onnx"], exported.text["sha256"], tag_file)
        _verify(exported.folder / exported.text["vocab"], exported.text["vocab_sha256"], tag_file)
    return exported


def _verify(path: Path, sha256: str, tag_file: Path) -> None:
    """``ModelLoadError`` unless ``path`` exists with the content ``tag_file`` records."""
    if not path.is_file():
        raise ModelLoadError(f"{path}, named by {tag_file}, is missing; remake it with `{EXPORT_COMMAND}`")
    actual = sha256_of(path)
    if actual != sha256:
        raise ModelLoadError(
            f"{path} is corrupt: its sha256 is {actual[:16]}…, {tag_file} records {sha256[:16]}…; "
            f"remake it with `{EXPORT_COMMAND} --force`"
        )


def _write_atomic(path: Path, write: Any) -> None:
    """``write(tmp_path)`` then rename over ``path``: readers see the old file or the new one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; other users of a shared cache read it too
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _store(folder: Path, source: Path, prefix: str, suffix: str) -> tuple[str, str]:
    """Copy ``source`` into ``folder`` named by its content (never overwritten); (name, sha256)."""
    sha = sha256_of(source)
    name = f"{prefix}-{sha[:16]}{suffix}"
    if not (folder / name).is_file():
        _write_atomic(folder / name, lambda tmp: tmp.write_bytes(source.read_bytes()))
    return name, sha


def write_export(
    cache: Path, onnx_file: Path, exported: Exported, text_file: Path | None = None, vocab: Path | None = None
) -> Exported:
    """Store ``onnx_file`` (a finished export), with a CLIP model's text graph and vocabulary, and
    then its tag; returns the tag as stored."""
    folder = export_folder(cache, exported.model, exported.weights)
    folder.mkdir(parents=True, exist_ok=True)
    onnx, sha = _store(folder, onnx_file, "model", ".onnx")
    text = dict(exported.text)
    if text_file is not None and vocab is not None:
        text["onnx"], text["sha256"] = _store(folder, text_file, "text", ".onnx")
        text["vocab"], text["vocab_sha256"] = _store(folder, vocab, "vocab", ".txt.gz")
    stored = Exported(**{**asdict(exported), "sha256": sha, "onnx": onnx, "text": text, "folder": folder})
    record = {k: v for k, v in asdict(stored).items() if k != "folder"}
    _write_atomic(folder / "tag.json", lambda tmp: tmp.write_text(json.dumps(record, indent=2) + "\n"))
    return stored
