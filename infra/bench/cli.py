"""``lookalike bench``: what the subcommand runs; its arguments are in ``infra.commands.bench``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

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
