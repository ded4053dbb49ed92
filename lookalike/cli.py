"""The ``lookalike`` command: the edge where settings are built and processes are wired."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from lookalike.errors import LookalikeError
from lookalike.settings import Settings

log = logging.getLogger("lookalike")


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("kafka", "urllib3", "botocore", "pymilvus", "towhee", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("kafka.coordinator").setLevel(logging.ERROR)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        log.info("received %s; finishing the current batch", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


# ---------------------------------------------------------------- commands
def cmd_stack(args: argparse.Namespace, settings: Settings) -> int:
    from infra import stack

    if args.action == "up":
        print(f"starting the local stack (state in {Path(settings.state_dir).resolve()})")
        stack.up(settings, dict(os.environ), workers=args.workers, dashboard=not args.no_dashboard)
        print("ready. upload with `lookalike upload DIR`, search with `lookalike search IMAGE`")
        if not args.no_dashboard:
            print(f"dashboard: http://127.0.0.1:{settings.dashboard_port}")
        return 0
    if args.action == "down":
        stack.down(settings, keep_data=args.keep_data)
        return 0
    report = stack.status(settings)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        if not report["parts"]:
            print(f"the local stack is not running (no state in {report['state_dir']})")
        for p in report["parts"]:
            print(f"{p['name']:<10} {p['state']:<9} pid {p['pid']:<7} {p['address']}")
        idx = report["index"]
        print(f"index      {idx['uri']} collection {idx['collection']}: {idx['vectors']} vectors")
    return 0 if report["parts"] and all(p["state"] == "up" for p in report["parts"]) else 1


def cmd_bridge(args: argparse.Namespace, settings: Settings) -> int:
    from producers.bridge import serve

    serve(settings, _stop_on_signals())
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from consumers import metrics
    from consumers.runner import Worker
    from lookalike.embedder import TimmEmbedder

    stop = _stop_on_signals()
    port = args.metrics_port if args.metrics_port is not None else settings.metrics_port
    metrics.serve(port)
    worker = Worker(settings, TimmEmbedder(settings), group=args.group)
    worker.run(stop, max_outage_s=args.max_outage)
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


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from lookalike.search import Searcher

    data = Path(args.image).read_bytes()
    searcher = Searcher(settings)
    try:
        result = searcher.search_bytes(data, k=args.k)
    finally:
        searcher.close()
    if args.json:
        print(json.dumps([n.to_dict() for n in result.neighbours]))
    else:
        print(
            f"{len(result.neighbours)} neighbours of {args.image} "
            f"(embed {result.embed_ms:.0f} ms, search {result.search_ms:.0f} ms)"
        )
        for rank, n in enumerate(result.neighbours, 1):
            print(f"{rank:>3}  {n.score:.4f}  s3://{n.bucket}/{n.key}")
    return 0


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lookalike", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("stack", help="run the local stack (moto S3, Tansu Kafka, Milvus Lite, bridge, workers)")
    ssub = p.add_subparsers(dest="action", required=True)
    up = ssub.add_parser("up", help="start everything in the background (idempotent)")
    up.add_argument("--workers", type=int, default=1)
    up.add_argument("--no-dashboard", action="store_true")
    st = ssub.add_parser("status", help="each part's address, pid and state, and the index's size")
    st.add_argument("--json", action="store_true")
    dn = ssub.add_parser("down", help="stop what `up` started")
    dn.add_argument("--keep-data", action="store_true", help="keep the Milvus Lite data directory")
    p.set_defaults(func=cmd_stack)

    p = sub.add_parser("bridge", help="S3 notifications over HTTP -> Kafka")
    p.set_defaults(func=cmd_bridge)

    p = sub.add_parser("worker", help="consume events, embed, upsert into Milvus")
    p.add_argument("--metrics-port", type=int, default=None)
    p.add_argument("--group", default=None)
    p.add_argument("--max-outage", type=float, default=0.0, help="give up after this many seconds (0: never)")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("upload", help="upload files and folders to the bucket")
    p.add_argument("paths", nargs="+")
    p.add_argument("--prefix", default="")
    p.add_argument("--bucket", default=None)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_upload)

    p = sub.add_parser("search", help="nearest neighbours of an image")
    p.add_argument("image")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except Exception as exc:
        print(f"lookalike: bad settings: {exc}", file=sys.stderr)
        return 2
    _setup_logging(settings)
    try:
        return int(args.func(args, settings))
    except LookalikeError as exc:
        print(f"lookalike: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"lookalike: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
