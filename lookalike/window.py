"""Which indexed objects a search may return: one type for the CLI, the dashboard and the API.

A window becomes a Milvus boolean expression (``lookalike.filters``) applied inside the search, so
the top k are the best k of the matching objects, not what is left of the global top k after
filtering. The API takes moments (ISO 8601); the dashboard's date pickers take whole UTC days
(``Window.days``); both end up here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from lookalike import filters

_LAST_MS = time(23, 59, 59, 999_000)


@dataclass(frozen=True)
class Window:
    """Keys under ``prefix`` in ``bucket``, uploaded within ``[since, until]`` (both ends included).

    ``bucket`` empty means any bucket the index holds (the workers may watch several); a ``prefix``
    is then ignored, since a key prefix means nothing without its bucket. A moment without a zone is
    UTC.
    """

    prefix: str = ""
    since: datetime | None = None
    until: datetime | None = None
    bucket: str = ""

    @classmethod
    def days(cls, prefix: str = "", since: date | None = None, until: date | None = None, bucket: str = "") -> Window:
        """Whole UTC days, as a date picker gives them: ``until`` runs to its last millisecond."""
        start = datetime(since.year, since.month, since.day, tzinfo=timezone.utc) if since is not None else None
        end = None
        if until is not None:
            end = datetime(until.year, until.month, until.day, tzinfo=timezone.utc) + timedelta(days=1, milliseconds=-1)
        return cls(prefix, start, end, bucket)

    @property
    def active(self) -> bool:
        """Whether it leaves anything out beyond the bucket (worth a line above the results)."""
        return bool(self.prefix) or self.since is not None or self.until is not None

    def problem(self) -> str | None:
        """A sentence when the window can hold nothing, instead of an empty result."""
        if self.since is not None and self.until is not None and filters.to_ms(self.since) > filters.to_ms(self.until):
            return f"The upload date range is empty: {_moment(self.since)} is after {_moment(self.until)}."
        return None

    def expression(self, exclude_id: str = "") -> str:
        """The Milvus filter; empty when nothing is filtered. ``exclude_id`` leaves one row out (an
        object searched by its own vector is its own best match)."""
        return filters.all_of(
            [
                filters.key_prefix(self.bucket, self.prefix) if self.bucket else "",
                filters.uploaded_between(self.since, self.until),
                filters.not_id(exclude_id) if exclude_id else "",
            ]
        )

    def describe(self) -> str:
        """One line naming the filter, shown above the results."""
        parts = []
        if self.prefix:
            parts.append(f"keys under `{self.prefix}`")
        if self.since is not None or self.until is not None:
            since = _moment(self.since) if self.since is not None else "…"
            until = _moment(self.until) if self.until is not None else "…"
            parts.append(f"uploaded {since} to {until} (UTC)")
        return "Only " + " · ".join(parts) if parts else "All indexed objects"


def _moment(when: datetime) -> str:
    """A day where the moment is a whole day's edge (what ``Window.days`` makes), else to the second."""
    utc = when.astimezone(timezone.utc) if when.tzinfo is not None else when
    if utc.time() in (time(0), _LAST_MS):
        return utc.date().isoformat()
    return utc.strftime("%Y-%m-%d %H:%M:%S")
