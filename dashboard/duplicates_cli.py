"""``lookalike duplicates [--threshold T] [--prefix P] [--json]``: print the near-duplicate groups.

A query, so it lives on the query side and reads only the core: the marks the workers wrote
(``duplicate_of``, ``duplicate_score``), grouped by ``lookalike.duplicates.find_groups``. No model
is loaded. ``--json`` prints one object, ``{"groups": [{"keys": [...], "max_distance": ...}]}``.

Without ``--threshold`` the one in force is LOOKALIKE_DUPLICATE_THRESHOLD, else the one calibrated
for the index's model family. A family with none (a CLIP model) has no default to list at: the
command says so and exits 2, as for any other input the user must supply, rather than print an
empty list that would read as "no duplicates".
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from lookalike.duplicates import DuplicateGroup, find_groups, threshold_for
from lookalike.families import uncalibrated_message
from lookalike.index import VectorIndex
from lookalike.process import HelpFormatter
from lookalike.settings import Settings


def all_groups(index: VectorIndex, threshold: float, prefix: str) -> list[DuplicateGroup]:
    """Every page of groups, in order."""
    out: list[DuplicateGroup] = []
    cursor: str | None = None
    while True:
        page, cursor = find_groups(index, threshold, prefix, limit=1000, cursor=cursor)
        out.extend(page)
        if cursor is None:
            return out


def threshold_in_force(index: VectorIndex, settings: Settings) -> float | None:
    """LOOKALIKE_DUPLICATE_THRESHOLD, else the calibrated one of the index's model; None when neither
    exists (after saying so on stderr). Asks Milvus only when the configured one is unset."""
    threshold, model = threshold_for(
        settings.duplicate_threshold, lambda: index if index.exists() else None, settings.model
    )
    if threshold is None:
        print(f"lookalike duplicates: {uncalibrated_message(model)}, or pass --threshold", file=sys.stderr)
    return threshold


def cmd_duplicates(args: argparse.Namespace, settings: Settings) -> int:
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise SystemExit("lookalike duplicates: --threshold must be between 0 and 1")
    index = VectorIndex(settings)
    try:
        threshold = args.threshold if args.threshold is not None else threshold_in_force(index, settings)
        if threshold is None:
            return 2
        groups = all_groups(index, threshold, args.prefix) if index.exists() and index.check_duplicate_fields() else []
    finally:
        index.close()
    if args.json:
        print(json.dumps({"groups": [{"keys": g.keys, "max_distance": g.max_distance} for g in groups]}))
        return 0
    for g in groups:
        print(f"{g.max_distance:.4f}  " + "  ".join(g.keys))
    print(f"{len(groups)} group(s) at similarity >= {threshold}")
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "duplicates",
        help="groups of near-duplicate objects, as the workers marked them",
        description="Print groups of near-duplicates: objects linked by their duplicate_of marks.",
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="cosine similarity a link needs (default: LOOKALIKE_DUPLICATE_THRESHOLD, else the one calibrated for "
        "the index's model family; lower finds nothing more)",
    )
    p.add_argument("--prefix", default="", help="only groups with a key under this prefix")
    p.add_argument("--json", action="store_true", help='one object: {"groups": [{"keys", "max_distance"}]}')
    p.set_defaults(func=cmd_duplicates)
