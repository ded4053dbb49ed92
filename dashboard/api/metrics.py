"""Prometheus request counts and latency per route, in a registry of the app's own.

A registry per app (not the global one) lets a process, or a test session, build several apps
without "Duplicated timeseries" errors. Requests are labelled by route *template*
(``/v1/objects/{key:path}``), never by the raw path, so keys cannot blow up the label space.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match

UNMATCHED = "unmatched"


class RequestMetrics:
    def __init__(self) -> None:
        self.routes: Sequence[BaseRoute] = ()  # for requests answered before routing (401, 413)
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "lookalike_api_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lookalike_api_request_seconds",
            "Time to answer a request, by route template and method",
            ["route", "method"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )

    async def middleware(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start = time.perf_counter()
        status = 500  # an exception escaping the app is answered with 500 by Starlette
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = route_template(request, self.routes)
            self.requests.labels(route, request.method, str(status)).inc()
            self.latency.labels(route, request.method).observe(time.perf_counter() - start)

    def exposition(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def route_template(request: Request, routes: Sequence[BaseRoute]) -> str:
    """The path template of the route that answered, or that matches a request refused before routing
    (``unmatched`` for a 404)."""
    answered = request.scope.get("route")
    if answered is not None and hasattr(answered, "path"):
        return str(answered.path)
    for route in routes:
        match, _ = route.matches(request.scope)
        if match == Match.FULL and hasattr(route, "path"):
            return str(route.path)
    return UNMATCHED
