"""The producers' subcommands: ``lookalike bridge`` and ``lookalike upload``.

Registered into the ``lookalike`` command by the composition root (``infra.cli``); each command
gets the settings built there and returns the process's exit status.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lookalike.process import HelpFormatter, command_name, stop_on_signals
from lookalike.settings import Settings

HELP = HelpFormatter
SKIPS_SHOWN = 10  # non-images named one by one; the rest are counted


def cmd_bridge(args: argparse.Namespace, settings: Settings) -> int:
    from producers.bridge import serve

    serve(settings, stop_on_signals())
    return 0


def cmd_upload(args: argparse.Namespace, settings: Settings) -> int:
    from lookalike.store import ObjectStore
    from producers.upload import plan_upload, split_images, upload

    items = plan_upload([Path(p) for p in args.paths], prefix=args.prefix)
    if not items:
        print("nothing to upload", file=sys.stderr)
        return 1
    refused: list[tuple[Any, str]] = []
    if not args.any_file:
        items, refused = split_images(items)
        for item, why in refused[:SKIPS_SHOWN]:
            print(f"skipped {item.path}: {why}", file=sys.stderr)
        if len(refused) > SKIPS_SHOWN:
            print(f"skipped {len(refused) - SKIPS_SHOWN} more files that are not images", file=sys.stderr)
    bucket = args.bucket or settings.bucket
    n = 0
    if items:
        n = upload(ObjectStore(settings), bucket, items, concurrency=args.concurrency, progress=not args.quiet)
    print(upload_summary(n, bucket, args.prefix, len(refused)), file=sys.stderr)
    return 1 if refused or not n else 0


def upload_summary(n: int, bucket: str, prefix: str, skipped: int) -> str:
    """What was sent, what was not, and what this command cannot know: whether the workers indexed it."""
    where = f"s3://{bucket}/{prefix.strip('/')}"
    lines = [f"uploaded {n} {'object' if n == 1 else 'objects'} to {where}"]
    if skipped:
        what = "1 file that is not an image" if skipped == 1 else f"{skipped} files that are not images"
        lines[0] += f"; skipped {what} (--any-file sends them)"
    if n:
        lines.append(
            "the workers index them within seconds; whether each was indexed or refused is not known here: "
            f"`{command_name()} objects KEY` says, with the reason"
        )
    return "\n".join(lines)


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
        description="Upload image files and folders (recursively, concurrently); the workers index each one. "
        "Files that are not images are skipped and named (exit status 1).",
        formatter_class=HELP,
    )
    p.add_argument("paths", nargs="+", help="files and folders to upload; folders keep their relative paths as keys")
    p.add_argument("--prefix", default="", help="key prefix for every object")
    p.add_argument("--bucket", default=None, help="target bucket (default: LOOKALIKE_BUCKET)")
    p.add_argument("--concurrency", type=int, default=8, help="uploads in flight at once")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--any-file", action="store_true", help="upload files that are not images too (the workers dead-letter them)"
    )
    p.set_defaults(func=cmd_upload)
