"""``lookalike eval``'s arguments; the eval itself (``infra.evaluation``) is imported only when it runs."""

from __future__ import annotations

import argparse
from typing import Any

from lookalike.process import HelpFormatter
from lookalike.settings import Settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Import the eval now, not when the parser is built (see ``infra.commands``)."""
    from infra.evaluation.cli import cmd_eval

    return cmd_eval(args, settings)


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
    p.set_defaults(func=run)
