"""The ``lookalike`` command: the composition root where settings are built and every part is wired.

Each application registers its own subcommands from its own package (``producers.cli``,
``consumers.cli``, ``dashboard.cli``); this layer adds the ones that compose them (``stack``,
``search``, ``eval``, ``bench``), builds the settings once and runs the chosen command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import consumers.cli
import dashboard.cli
import infra.bench.cli
import infra.evaluation.cli
import infra.reindex.cli
import producers.cli
from lookalike.errors import LookalikeError
from lookalike.process import HelpFormatter, setup_logging
from lookalike.settings import Settings

DESCRIPTION = (
    "lookalike makes the images in an S3 bucket searchable by visual similarity: drop images in, "
    "and a second later `lookalike search IMAGE` (or the dashboard) finds the ones that look alike."
)
EPILOG = "Settings come from LOOKALIKE_* variables or a .env file; see README.md. `lookalike COMMAND --help` for more."


# ---------------------------------------------------------------- stack and search
def cmd_stack(args: argparse.Namespace, settings: Settings) -> int:
    from infra import stack

    if args.action == "up":
        print(f"starting the local stack (state in {Path(settings.state_dir).resolve()})")
        stack.up(settings, dict(os.environ), workers=args.workers, dashboard=not args.no_dashboard, api=not args.no_api)
        print("ready. upload with `lookalike upload DIR`, search with `lookalike search IMAGE`")
        if not args.no_dashboard:
            print(f"dashboard: http://127.0.0.1:{settings.dashboard_port}")
        if not args.no_api:
            print(f"api: {settings.api_url} (docs at {settings.api_url}/docs; token LOOKALIKE_API_TOKEN)")
        return 0
    if args.action == "down":
        stack.down(settings, keep_data=args.keep_data)
        return 0
    report = stack.status(settings)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_status(report)
    return 0 if report["parts"] and all(p["state"] == "up" for p in report["parts"]) else 1


def print_status(report: dict[str, Any]) -> None:
    if not report["parts"]:
        print(f"the local stack is not running (no state in {report['state_dir']})")
    for p in report["parts"]:
        print(f"{p['name']:<10} {p['state']:<9} pid {p['pid']:<7} {p['address']}")
    idx = report["index"]
    print(f"index      {idx['uri']} collection {idx['collection']}: {idx['vectors']} vectors")


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from lookalike.search import Searcher

    data = Path(args.image).read_bytes()
    searcher = Searcher(settings)
    try:
        result = searcher.search_bytes(data, k=args.k)
    finally:
        searcher.close()
    if args.verbose:
        print(searcher.describe_timings(result), file=sys.stderr)
    if args.json:
        print(json.dumps([n.to_dict() for n in result.neighbours]))
        return 0
    print(
        f"{len(result.neighbours)} neighbours of {args.image} "
        f"(embed {result.embed_ms:.0f} ms, search {result.search_ms:.0f} ms)"
    )
    for rank, n in enumerate(result.neighbours, 1):
        print(f"{rank:>3}  {n.score:.4f}  s3://{n.bucket}/{n.key}")
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``stack`` and ``search``: the commands that run or query the whole system."""
    p = sub.add_parser(
        "stack",
        help="run the local stack (moto S3, Tansu Kafka, Milvus Lite, bridge, workers, dashboard)",
        description="Run every part on 127.0.0.1 in the background, no Docker; state and logs in LOOKALIKE_STATE_DIR.",
        formatter_class=HelpFormatter,
    )
    ssub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = ssub.add_parser("up", help="start everything in the background (idempotent)", formatter_class=HelpFormatter)
    up.add_argument("--workers", type=int, default=1, help="worker processes")
    up.add_argument("--no-dashboard", action="store_true", help="do not start the dashboard")
    up.add_argument("--no-api", action="store_true", help="do not start the HTTP query API")
    st = ssub.add_parser(
        "status", help="each part's address, pid and state, and the index's size", formatter_class=HelpFormatter
    )
    st.add_argument("--json", action="store_true", help="print one JSON object")
    dn = ssub.add_parser("down", help="stop what `up` started", formatter_class=HelpFormatter)
    dn.add_argument("--keep-data", action="store_true", help="keep the Milvus Lite data directory")
    p.set_defaults(func=cmd_stack)

    p = sub.add_parser(
        "search",
        help="nearest neighbours of an image",
        description="Embed IMAGE with the collection's model and print its nearest neighbours, best first.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("image", help="path of the query image")
    p.add_argument("-k", type=int, default=10, help="how many neighbours")
    p.add_argument("--json", action="store_true", help="print [{key, score, ...}] best first")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="say on stderr where the time went (load, decode, embed, search)"
    )
    p.set_defaults(func=cmd_search)


# ---------------------------------------------------------------- the root
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lookalike", description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register(sub)
    for app in (producers.cli, consumers.cli, dashboard.cli, infra.evaluation.cli, infra.bench.cli, infra.reindex.cli):
        app.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except Exception as exc:
        print(f"lookalike: bad settings: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings)
    try:
        return int(args.func(args, settings))
    except (LookalikeError, FileNotFoundError) as exc:
        print(f"lookalike: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
