"""``lookalike objects KEY...``: is this object indexed, and if not, why not.

An upload only puts bytes in the bucket; the workers decide later whether they are an image. So a
refused object used to be visible only as a 404 ("not indexed") or a line in the dashboard's dead
letters. This command asks, in order: the index (indexed, with its row), the dead letters
(``dead-lettered: <reason>``, the same words as the API's 404), the bucket (missing, or still
waiting for a worker, with the consumer lag).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lookalike.errors import NotIndexed, Unavailable
from lookalike.events import object_id
from lookalike.process import HelpFormatter
from lookalike.settings import Settings

if TYPE_CHECKING:
    from lookalike.deadletters import DeadLetterView


@dataclass(frozen=True)
class ObjectState:
    key: str
    state: str  # indexed | dead-lettered | pending | missing
    detail: str
    row: dict[str, Any] = field(default_factory=dict)


def indexed_row(settings: Settings, oid: str) -> dict[str, Any] | None:
    """The object's row in the collection the alias points at; None while not indexed."""
    from lookalike.index import VectorIndex

    index = VectorIndex(settings, timeout=5)
    try:
        index.follow()
        rows = index.get([oid])
    except NotIndexed:  # no collection yet: nothing is indexed
        return None
    finally:
        index.close()
    return {k: v for k, v in rows[0].items() if k != "vector"} if rows else None


def _lag(settings: Settings) -> str:
    from lookalike.bus import group_offsets

    try:
        return f"consumer lag {sum(o.lag for o in group_offsets(settings).values())}"
    except Unavailable:
        return "Kafka does not answer"


def _when(ms: Any) -> str:
    return datetime.fromtimestamp(int(ms) / 1000).strftime("%Y-%m-%d %H:%M:%S") if ms else "?"


def object_state(settings: Settings, bucket: str, key: str) -> ObjectState:
    """What became of ``key``; raises ``Unavailable`` when Milvus does not answer (nothing to say then)."""
    from lookalike.deadletters import describe, find_dead_letter
    from lookalike.store import ObjectStore

    oid = object_id(bucket, key)
    row = indexed_row(settings, oid)
    if row is not None:
        copy = f", duplicate of {row['duplicate_of']}" if row.get("duplicate_of") else ""
        return ObjectState(key, "indexed", f"indexed at {_when(row.get('indexed_at'))}{copy}", row)
    letter: DeadLetterView | None = None
    unknown = ""
    try:
        letter = find_dead_letter(settings, oid)
    except Unavailable as exc:
        unknown = f" (dead letters unknown: {exc})"
    info = ObjectStore(settings).stat(bucket, key)
    if letter is not None and (info is None or not letter.etag or letter.etag.strip('"') == info.etag):
        return ObjectState(key, "dead-lettered", describe(letter))
    if info is None:
        return ObjectState(key, "missing", f"not in s3://{bucket}{unknown}")
    earlier = f"; an earlier version was {describe(letter)}" if letter is not None else ""
    return ObjectState(key, "pending", f"in the bucket, not indexed yet ({_lag(settings)}){earlier}{unknown}")


def cmd_objects(args: argparse.Namespace, settings: Settings) -> int:
    bucket = args.bucket or settings.bucket
    states = [object_state(settings, bucket, key) for key in args.keys]
    if args.json:
        print(json.dumps([asdict(s) for s in states], default=str))
    else:
        for s in states:
            print(f"{s.key}: {s.detail}")
    refused = [s for s in states if s.state != "indexed"]
    if refused and not args.json:
        print(f"{len(refused)} of {len(states)} not indexed", file=sys.stderr)
    return 1 if refused else 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``objects``."""
    p = sub.add_parser(
        "objects",
        help="whether objects are indexed, and why not (dead-lettered: <reason>)",
        description="For each KEY: indexed (and when), dead-lettered with the workers' reason, missing from the "
        "bucket, or still waiting for a worker. Exit status 1 when any is not indexed.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("keys", nargs="+", metavar="KEY", help="object keys in the bucket")
    p.add_argument("--bucket", default=None, help="the bucket (default: LOOKALIKE_BUCKET)")
    p.add_argument("--json", action="store_true", help="print [{key, state, detail, row}]")
    p.set_defaults(func=cmd_objects)
