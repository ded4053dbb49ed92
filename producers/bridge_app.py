"""The bridge's HTTP contract as an ASGI app (FastAPI): what each request gets, and why.

* ``POST /events``: 401 without the token (Bearer, basic-auth password or ``?token=``, as MinIO's
  ``auth_token`` and SNS's HTTP endpoints send it); 503 + ``Retry-After`` when ``max_inflight``
  requests are already being handled; 413 for a body over the limit (counted as it streams in, so a
  chunked body or a lying ``Content-Length`` cannot get past it); 400 for an invalid length or
  anything that is not a notification we can publish; 408 for a body that does not arrive within the
  read timeout; 503 when Kafka did not acknowledge; 200 only once it acknowledged every record.
* ``SubscriptionConfirmation``: its ``SubscribeURL`` is fetched only on an allow-listed host (400
  otherwise, unfetched), and a fetch that fails answers 502, never ``{"confirmed": true}``.
* ``GET /healthz`` (and ``/health``): up, the topic, events published so far.

Answers given before the body was read to its end (401, 408, 413, a saturated 503) also close
the connection (``Connection: close``), so the rest of it is never read.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from lookalike.events import BadEvent, ObjectEvent, parse_message
from lookalike.settings import Settings
from producers import sns
from producers.publisher import Publishing, PublishRefused

log = logging.getLogger(__name__)

RETRY_AFTER_S = 1
CLOSE = {"Connection": "close"}


class BodyRefused(Exception):
    """The body cannot be read as sent: ``status`` says why (400 bad length, 413 too big, 408 too slow)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class BridgeState:
    """What the handlers share: settings, the publisher and two counters (one event loop: no locks)."""

    settings: Settings
    publisher: Publishing
    token: str = ""
    subscribe_hosts: list[str] = field(default_factory=list)
    inflight: int = 0
    published: int = 0

    @classmethod
    def build(cls, settings: Settings, publisher: Publishing) -> BridgeState:
        return cls(
            settings,
            publisher,
            token=settings.bridge_token.get_secret_value(),
            subscribe_hosts=sns.parse_patterns(settings.bridge_subscribe_hosts),
        )


def reply(status: int, doc: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(doc, status_code=status, headers=headers)


def authorised(request: Request, want: str) -> bool:
    """Bearer token (MinIO ``auth_token``), basic-auth password, or ``?token=`` (SNS HTTP endpoints)."""
    if not want:
        return True
    header = request.headers.get("authorization") or ""
    if header.startswith("Bearer "):
        given = header[7:].strip()
    elif header.startswith("Basic "):
        try:
            given = base64.b64decode(header[6:], validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            given = ""
    else:
        given = request.query_params.get("token") or ""
    return hmac.compare_digest(given.encode(), want.encode())


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The body, read as a stream and abandoned as soon as it passes ``limit`` bytes or ``timeout``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.strip().isdigit()):  # "-1" too: a negative length is no length
            raise BodyRefused(400, "bad Content-Length")
        if int(declared) > limit:
            raise BodyRefused(413, f"body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        with anyio.fail_after(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyRefused(413, f"body over {limit} bytes")
                chunks.append(chunk)
    except TimeoutError as exc:
        raise BodyRefused(408, f"body not received within {timeout:g} s") from exc
    except ClientDisconnect as exc:
        raise BodyRefused(400, "client disconnected before the end of the body") from exc
    return b"".join(chunks)


def make_app(settings: Settings, publisher: Publishing) -> FastAPI:
    """The bridge's routes, bound to ``publisher`` (Kafka in production, a fake in unit tests)."""
    app = FastAPI(title="lookalike bridge", docs_url=None, redoc_url=None, openapi_url=None)
    state = BridgeState.build(settings, publisher)
    app.state.bridge = state

    @app.get("/healthz")
    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "topic": state.publisher.topic, "published": state.published}

    @app.post("/events")
    async def events(request: Request) -> JSONResponse:
        if not authorised(request, state.token):
            return reply(401, {"error": "missing or wrong token"}, CLOSE)  # and its body is never read
        if state.inflight >= settings.bridge_max_inflight:
            log.warning("bridge saturated (%d requests in flight): 503", state.inflight)
            return reply(503, {"error": "busy, retry later"}, {"Retry-After": str(RETRY_AFTER_S), **CLOSE})
        state.inflight += 1
        try:
            return await handle(state, request)
        finally:
            state.inflight -= 1

    return app


async def handle(state: BridgeState, request: Request) -> JSONResponse:
    """One authorised notification: read, parse, confirm or publish."""
    settings = state.settings
    try:
        body = await read_body(request, settings.bridge_max_body, settings.bridge_read_timeout)
    except BodyRefused as exc:
        return reply(exc.status, {"error": str(exc)}, CLOSE)
    try:
        doc = json.loads(body)
        if not isinstance(doc, dict):
            raise BadEvent("body is not a JSON object")
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError and BadEvent are ValueErrors
        return reply(400, {"error": f"malformed notification: {exc}"})
    if doc.get("Type") == "SubscriptionConfirmation":
        return await confirm(state, doc)
    try:
        parsed = parse_message(doc)
    except Exception as exc:  # whatever the parser raises, this body will never parse: permanent
        log.info("refused a notification: %s: %s", type(exc).__name__, exc)
        return reply(400, {"error": f"malformed notification: {exc}"})
    return await publish(state, parsed)


async def publish(state: BridgeState, events: list[ObjectEvent]) -> JSONResponse:
    try:
        await to_thread.run_sync(state.publisher.publish, events)
    except PublishRefused as exc:
        log.warning("refused a notification Kafka cannot take (400): %s", exc)
        return reply(400, {"error": str(exc)})
    except Exception as exc:  # never 2xx for an event that was not published
        log.error("kafka publish failed, answering 503 so the sender retries: %s: %s", type(exc).__name__, exc)
        return reply(503, {"error": "event bus unavailable"}, {"Retry-After": str(RETRY_AFTER_S)})
    state.published += len(events)
    return reply(200, {"published": len(events)})


async def confirm(state: BridgeState, doc: dict[str, Any]) -> JSONResponse:
    try:
        url = sns.check_subscribe_url(doc.get("SubscribeURL"), state.subscribe_hosts)
    except sns.SubscribeRefused as exc:
        log.warning("not confirming SNS subscription for %s: %s", doc.get("TopicArn"), exc)
        return reply(400, {"error": str(exc)})
    try:
        await to_thread.run_sync(sns.confirm, url)
    except sns.ConfirmationFailed as exc:
        log.error("could not confirm SNS subscription for %s: %s", doc.get("TopicArn"), exc)
        return reply(502, {"error": f"subscription not confirmed: {exc}"})
    log.info("confirmed SNS subscription for %s", doc.get("TopicArn"))
    return reply(200, {"confirmed": True})
