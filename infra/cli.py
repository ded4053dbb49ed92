"""The ``lookalike`` command: the edge where settings are built and processes are wired."""

from __future__ import annotations

import argparse
import contextlib
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
    for noisy in ("kafka", "urllib3", "botocore", "towhee", "PIL", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # pymilvus logs a full traceback per failed RPC; the worker logs one line per outage instead
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
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
    metrics.serve(port, settings.metrics_host)
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


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.backfill import backfill
    from lookalike.embedder import TimmEmbedder

    report = backfill(
        settings, TimmEmbedder(settings), dry_run=args.dry_run, prefix=args.prefix, progress=not args.json
    )
    print(json.dumps(report.to_dict()) if args.json else report.summary())
    return 1 if report.failed else 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from lookalike.evaluate import load_dataset

    dataset = load_dataset(Path(args.dataset))
    say = (lambda m: print(m, file=sys.stderr)) if args.json else print
    say(f"dataset {dataset.root}: {len(dataset.train)} training images, {len(dataset.test)} queries")
    if args.in_memory:
        from lookalike.embedder import TimmEmbedder
        from lookalike.evaluate import run_in_memory

        report = run_in_memory(
            dataset, TimmEmbedder(settings), max_pixels=settings.max_image_pixels, batch_size=settings.batch_size
        )
    else:
        from lookalike.eval_pipeline import missing_parts, private_stack, run_pipeline

        env = dict(os.environ)
        mode = args.stack
        if mode == "auto":
            missing = missing_parts(settings)
            if missing:
                say(f"the configured stack does not answer ({', '.join(missing)}): using a private one")
            mode = "private" if missing else "configured"
        with contextlib.ExitStack() as scope:
            target = settings
            if mode == "private":
                target = scope.enter_context(private_stack(settings, env, keep=args.keep, say=say))
            report = run_pipeline(
                target,
                dataset,
                env,
                workers=args.workers,
                keep=args.keep,
                timeout=args.timeout,
                stack_label=mode,
                say=say,
            )
    print(json.dumps(report.to_dict()) if args.json else "\n".join(report.lines()))
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from lookalike.bench import BenchOptions, default_images, run_bench
    from lookalike.bench_stats import format_table

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
    )

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # unwinds through the bench's clean-up: no stray servers or workers

    signal.signal(signal.SIGTERM, interrupted)
    report = run_bench(settings, dict(os.environ), opts, say=lambda m: print(m, file=sys.stderr))
    print(json.dumps(report) if args.json else format_table(report))
    return 0


def cmd_dashboard(args: argparse.Namespace, settings: Settings) -> int:
    """Replace this process with ``streamlit run dashboard/app.py``, the settings passed in the environment."""
    import importlib.util

    from infra.stack import settings_env

    spec = importlib.util.find_spec("dashboard.app")
    if spec is None or spec.origin is None:
        print("lookalike: the dashboard package is not installed", file=sys.stderr)
        return 1
    port = args.port if args.port is not None else settings.dashboard_port
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        spec.origin,
        "--server.port",
        str(port),
        "--server.address",
        args.address,
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "viewer",
        "--browser.gatherUsageStats",
        "false",
    ]
    print(f"dashboard: http://{args.address}:{port}", file=sys.stderr, flush=True)
    os.execve(sys.executable, cmd, {**os.environ, **settings_env(settings)})
    return 0  # not reached


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

    p = sub.add_parser("backfill", help="reconcile the index with the bucket (index missing, drop deleted)")
    p.add_argument("--dry-run", action="store_true", help="only report what would change")
    p.add_argument("--prefix", default="", help="only objects under this key prefix")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("search", help="nearest neighbours of an image")
    p.add_argument("image")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("dashboard", help="the Streamlit dashboard: search by image, watch the live index")
    p.add_argument("--port", type=int, default=None, help="default: LOOKALIKE_DASHBOARD_PORT (8501)")
    p.add_argument("--address", default="127.0.0.1", help="interface to listen on")
    p.set_defaults(func=cmd_dashboard)

    p = sub.add_parser("eval", help="mHR@10, mAP@10 and hit@1 on a train/ + test/ dataset, through the pipeline")
    p.add_argument("--dataset", required=True, help="folder with train/<class>/* and test/<class>/* (and a csv)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--in-memory", action="store_true", help="same model and preprocessing, no servers")
    p.add_argument(
        "--stack",
        choices=["auto", "configured", "private"],
        default="auto",
        help="auto: the configured stack if it answers, else a private one on free ports",
    )
    p.add_argument("--workers", type=int, default=1, help="worker processes of the eval's own")
    p.add_argument("--keep", action="store_true", help="keep the eval's bucket, topics and collection")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the index")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="compute floor, ingest, freshness, query latency and the tutorial's way")
    p.add_argument("--images", default=None, help="default: ../shared/datasets/reverse_image_search/train")
    p.add_argument("--query-images", default=None, help="default: the sibling test/ folder, else --images")
    p.add_argument("--json", action="store_true", help="print one JSON object (progress goes to stderr)")
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    p.add_argument("--n-ingest", type=int, default=500, help="images for (b); repeated when fewer exist")
    p.add_argument("--freshness-seconds", type=float, default=60.0, help="length of the steady upload (c)")
    p.add_argument("--queries", type=int, default=100, help="warm searches for (d)")
    p.add_argument("--n-seed", type=int, default=None, help="images for (e); default: --n-ingest")
    p.add_argument("--batch-sizes", default="1,2,4,8,16,32,64", help="batch sizes the compute floor tries")
    p.add_argument("--floor-seconds", type=float, default=2.0, help="length of each compute-floor trial")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the index in (b)")
    p.set_defaults(func=cmd_bench)
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
