"""``lookalike reindex``: registered into the ``lookalike`` command by ``infra.cli``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lookalike.process import HelpFormatter
from lookalike.settings import Settings


def cmd_reindex(args: argparse.Namespace, settings: Settings) -> int:
    from infra.reindex import build, switch

    if args.rollback:
        result = switch.rollback(settings)
        print(json.dumps(result) if args.json else f"reindex: {result['alias']} -> {result['collection']} "
              f"({result['model']}), was {result['was']}; {result['restarted_workers']} workers restarted")  # fmt: skip
        return 0
    if args.drop_previous:
        result = switch.drop_previous(settings)
        print(json.dumps(result) if args.json else f"reindex: dropped {', '.join(result['dropped']) or 'nothing'}")
        return 0
    if not args.model:
        print("lookalike reindex: --model is required (or --rollback / --drop-previous)", file=sys.stderr)
        return 2
    pretrained = not args.no_pretrained
    summary = build.reindex(settings, args.model, args.weights, pretrained, progress=not args.json)
    print(json.dumps(summary.to_dict()) if args.json else summary.text())
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "reindex",
        help="re-embed everything with another model, then swap the index over (no downtime)",
        description=(
            "Build the next version of the collection with another model while the current one serves, "
            "following live events; swap the alias once it equals the bucket. See docs/model-changes.md."
        ),
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--model",
        default=None,
        help="the new version's model: timm's name, or open_clip:<arch> to search by words (no default: required)",
    )
    weights = p.add_mutually_exclusive_group()
    weights.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="local checkpoint of the new model (default: LOOKALIKE_WEIGHTS when --model is LOOKALIKE_MODEL, "
        "else timm's pretrained weights); recorded with the new version, so restarted workers load it",
    )
    weights.add_argument(
        "--no-pretrained", action="store_true", help="random init, whatever LOOKALIKE_WEIGHTS is (plumbing tests)"
    )
    p.add_argument("--rollback", action="store_true", help="point the alias back at the previous version")
    p.add_argument("--drop-previous", action="store_true", help="drop every version the alias does not point at")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=cmd_reindex)
