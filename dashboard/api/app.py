"""The FastAPI application: auth, limits, error translation, health and metrics around ``routes``.

Every failure a client can cause becomes a 4xx with a one-line ``{"detail": "..."}``; an outage of
S3 or Milvus becomes a 503 naming the part; nothing answers with a stack trace. The bearer token is
checked before the request body is read, so an anonymous client cannot make the server spool a
large upload.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from dashboard.api import routes
from dashboard.api.auth import token_matches, unauthorized
from dashboard.api.docs import mount_docs
from dashboard.api.metrics import RequestMetrics
from dashboard.api.schemas import Health, PartState
from dashboard.api.service import IndexNotReady, NotFound, QueryService, TooLarge
from dashboard.health import LABELS
from lookalike.embedder import Embedder, ModelLoadError, TimmEmbedder
from lookalike.errors import BadInput, BadText, LookalikeError, NoTextTower, Unavailable
from lookalike.imaging import BadImage
from lookalike.settings import Settings
from lookalike.store import ObjectStore

log = logging.getLogger(__name__)

MULTIPART_SLACK = 64 * 1024  # multipart framing around the file itself
DESCRIPTION = """Reverse image search over the lookalike index.

Every `/v1` route needs `Authorization: Bearer <LOOKALIKE_API_TOKEN>`. Errors are
`{"detail": "one line"}`: 400 not a usable image, 401 token, 404 not indexed / not in the bucket,
413 over the byte or pixel limit, 422 a parameter out of range or malformed, 503 S3 or Milvus down.
Query parameters a route does not declare are ignored.
"""


METRICS_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition format"}
}


class ConfigError(LookalikeError):
    """The API cannot start with these settings."""


def create_app(
    settings: Settings,
    embedder: Embedder | None = None,
    store: ObjectStore | None = None,
    milvus_timeout: float = 10.0,
) -> FastAPI:
    """The app for ``settings``; the model is loaded in the lifespan (once), unless ``embedder`` is."""
    token = settings.api_token.get_secret_value().encode()
    if not token:
        raise ConfigError("LOOKALIKE_API_TOKEN is empty: set a token, the API never runs without one")
    service = QueryService(settings, embedder or TimmEmbedder(settings), store, milvus_timeout=milvus_timeout)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(service.start)
        log.info("api ready: bucket %s, collection %s, model %s", settings.bucket, settings.collection, settings.model)
        try:
            yield
        finally:
            await run_in_threadpool(service.close)

    app = FastAPI(title="lookalike", version="1", description=DESCRIPTION, lifespan=lifespan, docs_url=None)
    mount_docs(app)
    app.state.service = service
    app.state.token = token
    app.include_router(routes.router)
    metrics = RequestMetrics()
    app.state.metrics = metrics
    _add_guard(app, token, settings.max_object_bytes + MULTIPART_SLACK)
    app.middleware("http")(metrics.middleware)  # added last: outermost, so it counts 401s and 413s too
    _add_error_handlers(app)

    _add_operations(app, service, metrics)
    metrics.routes = [*routes.router.routes, *app.router.routes]
    return app


def _add_operations(app: FastAPI, service: QueryService, metrics: RequestMetrics) -> None:
    """``/healthz`` and ``/metrics``: for probes and Prometheus, without the token."""

    @app.get(
        "/healthz",
        response_model=Health,
        tags=["operations"],
        responses={503: {"model": Health, "description": "S3 or Milvus does not answer (see parts)"}},
    )
    def healthz() -> JSONResponse:
        """Whether S3 and Milvus answer (200), or which of them does not (503). No token needed."""
        parts = service.health()
        body = Health(
            status="ok" if all(p.up for p in parts) else "degraded",
            parts={p.part: PartState(up=p.up, detail="" if p.up else p.message()) for p in parts},
            model=service.embedder.tag.model,
        )
        return JSONResponse(body.model_dump(), status_code=200 if body.status == "ok" else 503)

    @app.get("/metrics", tags=["operations"], response_class=Response, responses=METRICS_RESPONSES)
    def prometheus() -> Response:
        """Prometheus text format: request counts and latency per route. No token needed."""
        return metrics.exposition()


def _add_guard(app: FastAPI, token: bytes, max_body: int) -> None:
    """Refuse a missing/wrong token and an oversized body from the headers, before any body is read."""

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path.startswith("/v1/") or request.url.path == "/v1":
            if not token_matches(request.headers.get("authorization"), token):
                return unauthorized()
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > max_body:
                return problem(413, f"the request is {length} bytes, over the limit of {max_body}")
        return await call_next(request)


def problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": one_line(detail)}, status_code=status)


def one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def classify(exc: LookalikeError) -> tuple[int, str]:
    """HTTP status and one-line reason for the project's own errors."""
    if isinstance(exc, NotFound):
        return 404, str(exc)
    if isinstance(exc, TooLarge):
        return 413, str(exc)
    if isinstance(exc, BadImage):
        reason = str(exc)
        if "pixel limit" in reason or "decompression bomb" in reason or "too large" in reason:
            return 413, f"image: {reason}"
        if reason.startswith("zero-byte"):
            return 400, "image: the file is empty"
        return 400, f"image: {reason}"
    if isinstance(exc, Unavailable):
        label = LABELS.get(exc.service, exc.service)
        return 503, f"{exc.service} unavailable: the {label} does not answer ({exc.detail})"
    if isinstance(exc, IndexNotReady):
        return 503, f"milvus: the index cannot be searched with this model: {exc}"
    if isinstance(exc, ModelLoadError):  # the index's model (its alias target records it) cannot load here
        return 503, f"model: the index's model cannot be loaded here: {exc}"
    if isinstance(exc, BadText):  # the request is well formed; its text is what the model cannot read
        return 422, f"text: {exc}"
    if isinstance(exc, NoTextTower):  # the index's model, not the request, is what must change
        return 409, str(exc)
    if isinstance(exc, BadInput):
        return 400, str(exc)
    return 500, f"{type(exc).__name__}: {exc}"


def _add_error_handlers(app: FastAPI) -> None:
    async def lookalike_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, LookalikeError)
        status, detail = classify(exc)
        log.log(logging.WARNING if status >= 500 else logging.INFO, "%s %s", status, one_line(detail))
        return problem(status, detail)

    async def invalid_request(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem(422, validation_line(exc))

    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return problem(500, f"internal error ({type(exc).__name__}); the API log has the details")

    app.add_exception_handler(LookalikeError, lookalike_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(Exception, unexpected)


def validation_line(exc: RequestValidationError) -> str:
    """``k: Input should be less than or equal to 100`` from FastAPI's list of errors (the first)."""
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "body", "path", "header"))
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
