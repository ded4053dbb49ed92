"""``lookalike bench``'s arguments; the bench itself (``infra.bench``) is imported only when it runs."""

from __future__ import annotations

import argparse
from typing import Any

from lookalike.process import HelpFormatter
from lookalike.settings import Settings

# The photo run's defaults: a 12 MP JPEG is ~3.5 MB to PUT, GET and decode, so 50 distinct photos
# (made once, about a second each) under 150 keys and a 20 s paced run keep it to a few minutes here.
PHOTO_SOURCES, PHOTO_INGEST, PHOTO_FRESHNESS_S = 50, 150, 20.0


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Import the bench now, not when the parser is built (see ``infra.commands``)."""
    from infra.bench.cli import cmd_bench

    return cmd_bench(args, settings)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``bench`` to the ``lookalike`` command."""
    p = sub.add_parser(
        "bench",
        help="compute floor, ingest, freshness, query latency and the tutorial's way",
        description="Measure, on a private stack of its own, how close the live pipeline gets to the model's speed.",
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--images", default=None, help="image folder (default: ../shared/datasets/reverse_image_search/train)"
    )
    p.add_argument("--query-images", default=None, help="query folder (default: the sibling test/, else --images)")
    p.add_argument("--json", action="store_true", help="print one JSON object (progress goes to stderr)")
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    p.add_argument("--n-ingest", type=int, default=500, help="images for (b); repeated when fewer exist")
    p.add_argument("--freshness-seconds", type=float, default=60.0, help="length of the steady upload (c)")
    p.add_argument("--queries", type=int, default=100, help="warm searches for (d)")
    p.add_argument("--n-seed", type=int, default=None, help="images for (e) (default: --n-ingest)")
    p.add_argument("--batch-sizes", default="1,2,4,8,16,32,64", help="batch sizes the compute floor tries")
    p.add_argument("--floor-seconds", type=float, default=2.0, help="length of each compute-floor trial")
    p.add_argument(
        "--scale", type=int, default=0, help="instead: N synthetic vectors on the configured Milvus (scale.py)"
    )
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the index in (b)")
    p.add_argument("--photos", action="store_true", help="also the photo workload: 12 MP JPEGs made from --images")
    p.add_argument("--photo-sources", type=int, default=PHOTO_SOURCES, help="distinct photos made (and cached)")
    p.add_argument("--n-photos", type=int, default=PHOTO_INGEST, help="photos ingested (distinct ones repeated)")
    p.add_argument(
        "--photo-freshness-seconds", type=float, default=PHOTO_FRESHNESS_S, help="length of the photos' paced upload"
    )
    p.add_argument("--photo-megapixels", type=float, default=12.0, help="size of the photos made")
    p.add_argument("--photo-cache", default=None, help="where photos are kept (default: ~/.cache/lookalike/photos)")
    p.set_defaults(func=run)
