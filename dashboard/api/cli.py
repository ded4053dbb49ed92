"""The ``api`` subcommand: ``lookalike api [--host H] [--port P]`` serves the query API with uvicorn.

``register`` adds it to any ``argparse`` root (the ``lookalike`` command calls it); its handler
takes ``(args, settings)`` like every other subcommand."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from lookalike.process import HelpFormatter
from lookalike.settings import Settings

log = logging.getLogger(__name__)


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``api`` to the root parser's subcommands (``subparsers`` from ``add_subparsers``)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "api",
        help="the HTTP/JSON query API: search, similar, objects, thumbnails (FastAPI on uvicorn)",
        description="Serve the query API; every /v1 route needs 'Authorization: Bearer LOOKALIKE_API_TOKEN'.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--host", default=None, help="interface to listen on (default: LOOKALIKE_API_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port to listen on (default: LOOKALIKE_API_PORT, 8090)")
    p.set_defaults(func=cmd_api)
    return p


def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    serve(settings, host=args.host, port=args.port)
    return 0


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Load the model, then answer until SIGTERM or SIGINT (uvicorn handles both and drains requests)."""
    import uvicorn

    from dashboard.api.app import create_app

    app = create_app(settings)
    host = host or settings.api_host
    port = port if port is not None else settings.api_port
    log.info("api: http://%s:%d (docs at /docs)", host, port)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,  # /metrics counts requests; keys in an access log would leak what people search
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()
