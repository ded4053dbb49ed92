"""``lookalike bench``: the subcommand, registered by ``infra.cli``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from infra.bench.options import PHOTO_FRESHNESS_S, PHOTO_INGEST, PHOTO_SOURCES
from lookalike.process import HelpFormatter
from lookalike.settings import Settings


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    if args.scale:
        from infra.bench.scale import cmd_scale

        return cmd_scale(args, settings)
    from infra.bench.options import BenchOptions, default_images
    from infra.bench.run import run_bench
    from infra.bench.stats import format_table

    opts = BenchOptions(
        images=Path(args.images) if args.images else default_images(),
        query_images=Path(args.query_images) if args.query_images else None,
        n_ingest=args.n_ingest,
        freshness_s=args.freshness_seconds,
        queries=args.queries,
        n_seed=args.n_seed,
        workers=args.workers,
        batch_sizes=tuple(int(b) for b in args.batch_sizes.split(",")),
        floor_trial_s=args.floor_seconds,
        timeout_s=args.timeout,
        photos=args.photos,
        photo_sources=args.photo_sources,
        n_photos=args.n_photos,
        photo_freshness_s=args.photo_freshness_seconds,
        photo_megapixels=args.photo_megapixels,
        photo_cache=Path(args.photo_cache) if args.photo_cache else None,
    )

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # unwinds through the bench's clean-up: no stray servers or workers

    signal.signal(signal.SIGTERM, interrupted)
    report = run_bench(settings, dict(os.environ), opts, say=lambda m: print(m, file=sys.stderr))
    print(json.dumps(report) if args.json else format_table(report))
    return 0


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
    p.set_defaults(func=cmd_bench)
