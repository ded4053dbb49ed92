"""The API's JSON shapes: what ``/openapi.json`` documents and every response is checked against."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, Field, StrictInt, StrictStr, field_validator

from lookalike.search import Neighbour
from lookalike.text_search import MAX_TEXT_CHARS, SAY_IN_WORDS


def iso_ms(ms: int) -> str | None:
    """A millisecond timestamp as ISO 8601 UTC (``2026-12-01T21:00:00.123Z``); ``None`` when unknown."""
    if ms <= 0:
        return None
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Result(BaseModel):
    key: str = Field(description="object key in the bucket")
    bucket: str
    score: float = Field(description="cosine similarity to the query, 1.0 = identical")
    etag: str
    size: int = Field(description="bytes")
    content_type: str
    uploaded_at: str | None = Field(description="upload time (the bucket event's), ISO 8601 UTC")

    @classmethod
    def of(cls, n: Neighbour) -> Result:
        return cls(
            key=n.key,
            bucket=n.bucket,
            score=n.score,
            etag=n.etag,
            size=n.size,
            content_type=n.content_type,
            uploaded_at=iso_ms(n.event_time),
        )


class Results(BaseModel):
    results: list[Result] = Field(description="best first")
    took_ms: float = Field(description="decode + embed + Milvus search, in this process")


class TextQuery(BaseModel):
    """The body of ``POST /v1/search/text``. Strict types: a number is not a text, nor a string a number."""

    text: StrictStr = Field(
        min_length=1,
        max_length=MAX_TEXT_CHARS,
        description="what the images should show, in words; text over the model's context (77 tokens for "
        "CLIP) is refused with 422 naming the token count and the limit, never cut",
        examples=["a red double-decker bus"],
    )
    k: StrictInt = Field(10, ge=1, le=100, description="how many neighbours, at most 100")
    prefix: StrictStr = Field("", max_length=1024, description="only keys that start with this")
    since: datetime | None = Field(None, description="uploaded at or after (ISO 8601; no zone means UTC)")
    until: datetime | None = Field(None, description="uploaded at or before (ISO 8601; no zone means UTC)")

    @field_validator("text")
    @classmethod
    def not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError(f"is only whitespace: {SAY_IN_WORDS}")
        return text

    @field_validator("since", "until", mode="before")
    @classmethod
    def iso_string(cls, value: object) -> object:
        """An ISO 8601 string or null, as documented; a bare number is not taken as a Unix time."""
        if value is not None and not isinstance(value, str):
            raise ValueError("must be an ISO 8601 date-time string")
        return value


class ObjectRow(BaseModel):
    key: str
    bucket: str
    etag: str
    size: int
    content_type: str
    uploaded_at: str | None
    last_modified: str | None = Field(description="the object's Last-Modified when it was indexed")
    indexed_at: str | None
    model: str = Field(description="the model that made the vector (LOOKALIKE_MODEL: timm or open_clip:<arch>)")
    duplicate_of: str | None = Field(
        None, description="key of its nearest other object when that is a near-copy (LOOKALIKE_DUPLICATE_THRESHOLD)"
    )
    duplicate_score: float | None = Field(None, description="cosine similarity to duplicate_of")

    @classmethod
    def of(cls, bucket: str, key: str, row: dict[str, Any]) -> ObjectRow:
        dup = row.get("duplicate_of") or None  # the worker stores the id, bucket/key
        if dup and str(dup).startswith(f"{bucket}/"):
            dup = str(dup)[len(bucket) + 1 :]
        score = row.get("duplicate_score")
        return cls(
            key=key,
            bucket=bucket,
            etag=str(row.get("etag", "")),
            size=int(row.get("size") or 0),
            content_type=str(row.get("content_type", "")),
            uploaded_at=iso_ms(int(row.get("event_time") or 0)),
            last_modified=iso_ms(int(row.get("last_modified") or 0)),
            indexed_at=iso_ms(int(row.get("indexed_at") or 0)),
            model=str(row.get("model", "")),
            duplicate_of=str(dup) if dup else None,
            duplicate_score=round(float(score), 6) if dup and score is not None else None,
        )


class Group(BaseModel):
    keys: list[str] = Field(description="object keys of one group of near-duplicates, sorted")
    max_distance: float = Field(description="1 - the lowest cosine similarity among the group's links")


class Duplicates(BaseModel):
    groups: list[Group] = Field(description="sorted by their first key")
    next_cursor: str | None = Field(description="pass as cursor for the next page; null on the last page")


class Problem(BaseModel):
    detail: str = Field(description="one line saying what was wrong")


class PartState(BaseModel):
    up: bool
    detail: str = ""


class Health(BaseModel):
    status: str = Field(description="'ok' when every part answers, else 'degraded'")
    parts: dict[str, PartState] = Field(description="s3 and milvus: the services the API reads")
    model: str
