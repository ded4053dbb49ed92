"""The producers' subcommands: ``lookalike bridge`` and ``lookalike upload``.

Registered into the ``lookalike`` command by the composition root (``infra.cli``); each command
gets the settings built there and returns the process's exit status.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lookalike.process import HelpFormatter, stop_on_signals
from lookalike.settings import Settings

HELP = HelpFormatter


def cmd_bridge(args: argparse.Namespace, settings: Settings) -> int:
    from producers.bridge import serve

    serve(settings, stop_on_signals())
    return 0


def cmd_upload(args: argparse.Namespace, settings: Settings) -> int:
    from lookalike.store import ObjectStore
    from producers.upload import plan_upload, upload

    items = plan_upload([Path(p) for p in args.paths], prefix=args.prefix)
    if not items:
        print("nothing to upload", file=sys.stderr)
        return 1
    store = ObjectStore(settings)
    bucket = args.bucket or settings.bucket
    n = upload(store, bucket, items, concurrency=args.concurrency, progress=not args.quiet)
    print(f"uploaded {n} objects to s3://{bucket}/{args.prefix.strip('/')}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``bridge`` and ``upload`` to the ``lookalike`` command."""
    p = sub.add_parser(
        "bridge",
        help="S3 notifications over HTTP -> Kafka",
        description="Receive the bucket's event notifications (SNS over HTTP) and publish them to Kafka; "
        "answers 2xx only once Kafka has acknowledged.",
        formatter_class=HELP,
    )
    p.set_defaults(func=cmd_bridge)

    p = sub.add_parser(
        "upload",
        help="upload files and folders to the bucket",
        description="Upload image files and folders (recursively, concurrently); each upload gets indexed.",
        formatter_class=HELP,
    )
    p.add_argument("paths", nargs="+", help="files and folders to upload; folders keep their relative paths as keys")
    p.add_argument("--prefix", default="", help="key prefix for every object")
    p.add_argument("--bucket", default=None, help="target bucket (default: LOOKALIKE_BUCKET)")
    p.add_argument("--concurrency", type=int, default=8, help="uploads in flight at once")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_upload)
