"""The eval's dataset, its judging and its report: what both ways of ``lookalike eval`` share.

The dataset has the towhee tutorial's layout: ``train/<class>/*`` is indexed, ``test/<class>/*``
are the queries, and an optional csv (``id,path,label``) names each training image's class. A hit
is relevant when its class equals the query's; ``judge`` turns a ranked list of hit keys into the
relevance flags that ``infra.evaluation.measures`` scores.
"""

from __future__ import annotations

import csv
import logging
import os
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from infra.evaluation.measures import Ranked, summarise
from lookalike.errors import LookalikeError
from lookalike.imaging import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

K = 10


class EvalError(LookalikeError):
    """The evaluation could not run (bad dataset layout, pipeline did not index everything, ...)."""


@dataclass(frozen=True)
class Item:
    """One image of the dataset: its file, its key (path under ``train/`` or ``test/``) and its class."""

    path: Path
    key: str
    label: str


@dataclass(frozen=True)
class Dataset:
    root: Path
    train: list[Item]
    test: list[Item]

    def labels(self) -> dict[str, str]:
        """Training key -> class: how a search hit's key is judged."""
        return {it.key: it.label for it in self.train}

    def relevant_counts(self) -> Counter[str]:
        return Counter(it.label for it in self.train)


@dataclass
class Report:
    """What ``lookalike eval`` prints; ``to_dict`` is the ``--json`` object."""

    mode: str
    model: str
    dim: int
    mhr_at_10: float
    map_at_10_towhee: float
    map_at_10: float
    hit_at_1: float
    n_indexed: int
    n_queries: int
    index_seconds: float
    query_p50_ms: float
    n_dead: int = 0
    stack: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("mhr_at_10", "map_at_10_towhee", "map_at_10", "hit_at_1"):
            out[name] = round(out[name], 4)
        out["index_seconds"] = round(self.index_seconds, 2)
        out["query_p50_ms"] = round(self.query_p50_ms, 1)
        return out

    def lines(self) -> list[str]:
        return [
            f"mode            {self.mode}" + (f" ({self.stack} stack)" if self.stack else ""),
            f"model           {self.model} (dim {self.dim})",
            f"indexed         {self.n_indexed} images in {self.index_seconds:.1f} s"
            + (f", {self.n_dead} dead-lettered" if self.n_dead else ""),
            f"queries         {self.n_queries}, p50 {self.query_p50_ms:.0f} ms",
            f"mHR@10          {self.mhr_at_10:.4f}",
            f"mAP@10 (towhee) {self.map_at_10_towhee:.4f}   precision averaged over the relevant hits found",
            f"mAP@10          {self.map_at_10:.4f}   standard: normalised by min(10, relevant in gallery)",
            f"hit@1           {self.hit_at_1:.4f}",
        ]


# ---------------------------------------------------------------- dataset
def load_dataset(root: Path) -> Dataset:
    """Read ``train/<class>/*`` and ``test/<class>/*``; a csv with ``path`` and ``label`` columns overrides classes."""
    root = Path(root).expanduser()
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise EvalError(f"{root} has no {split}/ folder (expected train/<class>/*, test/<class>/*)")
    csv_labels = _csv_labels(root)
    train = _items(root, "train", csv_labels)
    test = _items(root, "test", csv_labels)
    if not train or not test:
        raise EvalError(f"{root}: found {len(train)} training and {len(test)} test images in class folders")
    counts = Counter(it.label for it in train)
    orphans = sorted({it.label for it in test if it.label not in counts})
    if orphans:
        log.warning("%d query classes have no training images: %s", len(orphans), ", ".join(orphans[:5]))
    return Dataset(root, train, test)


def _items(root: Path, split: str, csv_labels: dict[str, str]) -> list[Item]:
    base = root / split
    items: list[Item] = []
    disagree = 0
    for path in _files(base):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        rel = path.relative_to(base)
        if len(rel.parts) < 2 or any(p.startswith(".") for p in rel.parts):
            continue  # not inside a class folder
        folder_label = rel.parts[0]
        label = csv_labels.get(str(PurePosixPath(split, *rel.parts)), folder_label)
        disagree += label != folder_label
        items.append(Item(path, rel.as_posix(), label))
    if disagree:
        log.warning("%s: the csv names another class than the folder for %d images; using the csv", split, disagree)
    return items


def _files(base: Path) -> list[Path]:
    """Every file below ``base``, sorted; symlinked class folders are followed (slices of a dataset are)."""
    return sorted(Path(d, f) for d, _, files in os.walk(base, followlinks=True) for f in files)


def _csv_labels(root: Path) -> dict[str, str]:
    """``split/class/file`` -> label from every csv in the root that has ``path`` and ``label`` columns."""
    labels: dict[str, str] = {}
    for path in sorted(root.glob("*.csv")):
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
                continue
            for row in reader:
                rel = PurePosixPath(row["path"].strip().replace("\\", "/"))
                parts = [p for p in rel.parts if p not in (".", "/")]
                if parts and row["label"]:
                    labels[str(PurePosixPath(*parts))] = row["label"].strip()
    return labels


# ---------------------------------------------------------------- scoring
def judge(hit_keys: Sequence[str], query: Item, labels: dict[str, str], counts: Counter[str]) -> Ranked:
    """Turn a query's ranked hit keys into relevance flags (unknown keys are never relevant)."""
    return Ranked(tuple(labels.get(k) == query.label for k in hit_keys[:K]), counts.get(query.label, 0))


def make_report(
    mode: str,
    results: Sequence[Ranked],
    *,
    model: str,
    dim: int,
    n_indexed: int,
    index_seconds: float,
    query_ms: Sequence[float],
    n_dead: int = 0,
    stack: str = "",
) -> Report:
    s = summarise(results, K)
    return Report(
        mode=mode,
        model=model,
        dim=dim,
        mhr_at_10=s.mhr_at_10,
        map_at_10_towhee=s.map_at_10_towhee,
        map_at_10=s.map_at_10,
        hit_at_1=s.hit_at_1,
        n_indexed=n_indexed,
        n_queries=s.n_queries,
        index_seconds=index_seconds,
        query_p50_ms=statistics.median(query_ms) if query_ms else 0.0,
        n_dead=n_dead,
        stack=stack,
    )
