"""The consumers' subcommands: ``lookalike worker`` and ``lookalike backfill``.

Registered into the ``lookalike`` command by the composition root (``infra.cli``); each command
gets the settings built there and returns the process's exit status.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from lookalike.process import HelpFormatter, stop_on_signals
from lookalike.settings import Settings

HELP = HelpFormatter


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from consumers import metrics
    from consumers.runner import Worker
    from lookalike.embedder import TimmEmbedder
    from lookalike.targets import check_worker

    check_worker(settings)  # before the model loads: another model's checkpoint would fail with less said
    stop = stop_on_signals()
    port = args.metrics_port if args.metrics_port is not None else settings.metrics_port
    metrics.serve(port, settings.metrics_host)
    worker = Worker(settings, TimmEmbedder(settings), group=args.group)
    worker.run(stop, max_outage_s=args.max_outage)
    return 0


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.backfill import backfill
    from lookalike.embedder import TimmEmbedder

    report = backfill(
        settings, TimmEmbedder(settings), dry_run=args.dry_run, prefix=args.prefix, progress=not args.json
    )
    print(json.dumps(report.to_dict()) if args.json else report.summary())
    return 1 if report.failed else 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``worker`` and ``backfill`` to the ``lookalike`` command."""
    p = sub.add_parser(
        "worker",
        help="consume bucket events, embed the images, upsert their vectors into Milvus",
        description="Join the consumer group, index every new, changed or deleted object, commit after each write.",
        formatter_class=HELP,
    )
    p.add_argument(
        "--metrics-port", type=int, default=None, help="Prometheus /metrics port (default: LOOKALIKE_METRICS_PORT)"
    )
    p.add_argument("--group", default=None, help="consumer group (default: LOOKALIKE_GROUP)")
    p.add_argument(
        "--max-outage",
        type=float,
        default=0.0,
        help="exit non-zero after a service has been down this many seconds (0: retry for ever)",
    )
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser(
        "backfill",
        help="reconcile the index with the bucket (index missing, drop deleted)",
        description="Index what is missing or changed (by etag) and remove vectors of deleted objects.",
        formatter_class=HELP,
    )
    p.add_argument("--dry-run", action="store_true", help="only report what would change")
    p.add_argument("--prefix", default="", help="only objects under this key prefix (empty: all)")
    p.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    p.set_defaults(func=cmd_backfill)
