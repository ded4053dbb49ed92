"""The dashboard's subcommand: ``lookalike dashboard`` runs ``streamlit run dashboard/app.py``.

Registered into the ``lookalike`` command by the composition root (``infra.cli``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from typing import Any

from dashboard.access import upload_limit_mb
from lookalike.process import HelpFormatter
from lookalike.settings import Settings

HELP = HelpFormatter


def streamlit_command(app: str, port: int, address: str, max_object_bytes: int = 50 * 1024 * 1024) -> list[str]:
    """Headless, no file watcher, viewer toolbar, no usage stats: a service, not a dev server.

    The uploader takes no more than the workers would index (``LOOKALIKE_MAX_OBJECT_BYTES``), so a
    huge file is refused by Streamlit's server before it is held in memory."""
    return [
        *(sys.executable, "-m", "streamlit", "run", app),
        *("--server.port", str(port), "--server.address", address),
        *("--server.headless", "true", "--server.fileWatcherType", "none"),
        *("--server.maxUploadSize", str(upload_limit_mb(max_object_bytes))),
        *("--client.toolbarMode", "viewer", "--browser.gatherUsageStats", "false"),
    ]


def cmd_dashboard(args: argparse.Namespace, settings: Settings) -> int:
    """Replace this process with Streamlit, the settings passed in the environment."""
    spec = importlib.util.find_spec("dashboard.app")
    if spec is None or spec.origin is None:
        print("lookalike: the dashboard package is not installed", file=sys.stderr)
        return 1
    port = args.port if args.port is not None else settings.dashboard_port
    print(f"dashboard: http://{args.address}:{port}", file=sys.stderr, flush=True)
    os.execve(
        sys.executable,
        streamlit_command(spec.origin, port, args.address, settings.max_object_bytes),
        {**os.environ, **settings.as_env()},
    )
    return 0  # not reached


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``dashboard``, ``api`` and ``duplicates`` (the query side) to the ``lookalike`` command."""
    from dashboard.api.cli import register as register_api
    from dashboard.duplicates_cli import register as register_duplicates

    register_api(sub)
    register_duplicates(sub)
    p = sub.add_parser(
        "dashboard",
        help="the Streamlit dashboard: search by image, watch the live index",
        description="Run the dashboard against the configured stack (search by image, live index panel).",
        formatter_class=HELP,
    )
    p.add_argument("--port", type=int, default=None, help="port to listen on (default: LOOKALIKE_DASHBOARD_PORT)")
    p.add_argument("--address", default="127.0.0.1", help="interface to listen on")
    p.set_defaults(func=cmd_dashboard)
