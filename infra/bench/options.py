"""What a bench run is asked to do: its images and sizes, and which sizes fall short of the issue's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# the photo run's defaults live with the subcommand's arguments, which must not import the bench
from infra.commands.bench import PHOTO_FRESHNESS_S, PHOTO_INGEST, PHOTO_SOURCES

# The minimums for a conforming run; smaller values are allowed (tests) and flagged.
MIN_INGEST, MIN_FRESHNESS_S, MIN_QUERIES = 500, 60.0, 100


def default_images() -> Path:
    """The tutorial's training images beside the checkout (``../shared/datasets/...``).

    Looked up next to the source tree first (an editable install, as ``infra/install.sh`` does),
    then next to the working directory (a wheel installed elsewhere, run from the checkout).
    """
    rel = Path("shared", "datasets", "reverse_image_search", "train")
    beside_source = Path(__file__).resolve().parents[3] / rel
    return beside_source if beside_source.is_dir() else Path.cwd().resolve().parent / rel


@dataclass(frozen=True)
class BenchOptions:
    images: Path
    query_images: Path | None = None
    n_ingest: int = MIN_INGEST
    freshness_s: float = MIN_FRESHNESS_S
    queries: int = MIN_QUERIES
    n_seed: int | None = None  # default: the same N as ingest
    workers: int = 1
    batch_sizes: tuple[int, ...] = (1, 8, 16, 32, 64)
    floor_trial_s: float = 3.0
    timeout_s: float = 1800.0
    photos: bool = False  # also the photo workload (12 MP JPEGs made from the images)
    photo_sources: int = PHOTO_SOURCES  # distinct photos made (and cached)
    n_photos: int = PHOTO_INGEST  # photos ingested, the distinct ones repeated under new keys
    photo_freshness_s: float = PHOTO_FRESHNESS_S
    photo_megapixels: float = 12.0
    photo_batch_sizes: tuple[int, ...] = (8, 32)
    photo_cache: Path | None = None  # default: ~/.cache/lookalike/photos

    def query_root(self) -> Path:
        if self.query_images is not None:
            return self.query_images
        sibling = self.images.parent / "test"
        return sibling if self.images.name == "train" and sibling.is_dir() else self.images


def conformance_notes(opts: BenchOptions, found: int) -> list[str]:
    notes = []
    if opts.n_ingest < MIN_INGEST:
        notes.append(f"--n-ingest {opts.n_ingest} is below the issue's {MIN_INGEST}")
    if opts.freshness_s < MIN_FRESHNESS_S:
        notes.append(f"--freshness-seconds {opts.freshness_s:g} is below the issue's {MIN_FRESHNESS_S:g}")
    if opts.queries < MIN_QUERIES:
        notes.append(f"--queries {opts.queries} is below the issue's {MIN_QUERIES}")
    if found < opts.n_ingest:
        notes.append(f"only {found} image files: keys repeat them with a -rK suffix")
    if opts.photos:
        notes.append(
            f"photos: {opts.photo_sources} distinct {opts.photo_megapixels:g} MP JPEGs made from images "
            f"picked evenly over the folder, ingested under {opts.n_photos} keys "
            f"(fewer than the thumbnails' {opts.n_ingest}: each is ~40x the bytes), "
            f"paced freshness for {opts.photo_freshness_s:g} s"
        )
    return notes
