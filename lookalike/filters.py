"""Milvus filter expressions for search: keys under a prefix, upload time in a range, one key left out.

Keys come from users and may hold anything S3 allows: control characters, quotes, backslashes, ``%``
and ``_``. Milvus's expression parsers disagree on escapes: Milvus Lite 3.2 refuses ``\\u``, ``\\x``
and octal escapes (so ``json.dumps``, which writes U+0000 to U+001F as ``\\uXXXX``, breaks on them);
Milvus 2.3 takes them all. Both take a control character written raw inside the quotes, except a
line break, which both take as ``\\n`` / ``\\r``. So ``literal`` escapes only ``\\``, ``"``, LF and
CR and passes every other character as it is (tested for U+0001 to U+001F and U+007F on both servers,
``tests/integration/test_control_keys.py`` and ``tests/milvus_server``).

``%`` and ``_`` are wildcards of ``like``: Milvus Lite 3.2 honours ``\\%`` and ``\\_`` but matches
no key holding a backslash however it is escaped, and Milvus 2.3 escapes nothing (milvus-docs#2525).
So a prefix is expressed as a primary-key *range*: ``id >= "b/p" && id < "b/q"``, where ``"b/q"`` is
the smallest string above every string starting with ``"b/p"``. Milvus compares VARCHARs byte-wise
on UTF-8, which orders like code points, so the range holds exactly the keys under the prefix,
whatever characters it contains.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

MAX_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"}


def literal(text: str) -> str:
    """A double-quoted Milvus string literal holding exactly ``text`` (see the module docstring)."""
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in text) + '"'


def in_list(values: Iterable[str], field: str = "id") -> str:
    """``field in ["a","b",...]``: rows whose ``field`` is one of ``values``."""
    return f"{field} in [" + ",".join(literal(v) for v in values) + "]"


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix``.

    ``None`` when there is none (the prefix is empty or all U+10FFFF): then no upper bound applies.
    """
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last >= MAX_CODE_POINT:
            continue  # nothing above it at this position: carry into the previous character
        nxt = last + 1
        if nxt in _SURROGATES:  # not encodable in UTF-8; the next encodable code point follows them
            nxt = _SURROGATES.stop
        return "".join(chars) + chr(nxt)
    return None


def key_prefix(bucket: str, prefix: str = "", field: str = "id") -> str:
    """Rows of ``bucket`` whose key (in ``field``, an id ``bucket/key``) starts with ``prefix``."""
    lower = f"{bucket}/{prefix}"
    upper = prefix_upper_bound(lower)
    terms = [f"{field} >= {literal(lower)}"]
    if upper is not None:
        terms.append(f"{field} < {literal(upper)}")
    return " && ".join(terms)


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch; a time without a zone is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def uploaded_between(since: datetime | None = None, until: datetime | None = None) -> str:
    """``event_time`` (the upload's time, in ms) within ``[since, until]``; empty for no bound."""
    terms = []
    if since is not None:
        terms.append(f"event_time >= {to_ms(since)}")
    if until is not None:
        terms.append(f"event_time <= {to_ms(until)}")
    return " && ".join(terms)


def not_id(oid: str) -> str:
    """Leave one row out (an object is its own best match)."""
    return f"id != {literal(oid)}"


def all_of(terms: Iterable[str]) -> str:
    """The conjunction of the non-empty terms, each parenthesised; empty when there are none."""
    parts = [t for t in terms if t]
    return " && ".join(f"({t})" for t in parts)
