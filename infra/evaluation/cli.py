"""``lookalike eval``: the subcommand, registered by ``infra.cli``."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from lookalike.process import HelpFormatter
from lookalike.settings import Settings


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from infra.evaluation.dataset import load_dataset

    dataset = load_dataset(Path(args.dataset))
    say = (lambda m: print(m, file=sys.stderr)) if args.json else print
    say(f"dataset {dataset.root}: {len(dataset.train)} training images, {len(dataset.test)} queries")
    if args.in_memory:
        from infra.evaluation.in_memory import run_in_memory
        from lookalike.embedder import TimmEmbedder

        report = run_in_memory(
            dataset, TimmEmbedder(settings), max_pixels=settings.max_image_pixels, batch_size=settings.batch_size
        )
    else:
        from infra import stack
        from infra.evaluation.pipeline import run_pipeline

        env = dict(os.environ)
        mode = args.stack
        if mode == "auto":
            missing = stack.missing_parts(settings)
            if missing:
                say(f"the configured stack does not answer ({', '.join(missing)}): using a private one")
            mode = "private" if missing else "configured"
        with contextlib.ExitStack() as scope:
            target = settings
            if mode == "private":
                target = scope.enter_context(stack.private_stack(settings, env, keep=args.keep, say=say))
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


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``eval`` to the ``lookalike`` command."""
    p = sub.add_parser(
        "eval",
        help="mHR@10, mAP@10 and hit@1 on a train/ + test/ dataset, through the pipeline",
        description="Index train/ through the real pipeline into names of the eval's own, query with test/, "
        "print the tutorial's measures, delete what it created.",
        formatter_class=HelpFormatter,
    )
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
