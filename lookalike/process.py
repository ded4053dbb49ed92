"""What every long-running process does at its edge: configure logging once, stop cleanly on a signal.

The CLI and the dashboard both call ``setup_logging``, so every process logs the same format and
the same libraries are quietened; workers and the bridge share ``stop_on_signals`` so SIGTERM
always means "finish what is in hand, then leave".
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import threading
from pathlib import Path

from lookalike.settings import Settings

log = logging.getLogger("lookalike")

# Libraries that log every retry or request at INFO; their warnings still show.
NOISY = ("kafka", "urllib3", "botocore", "towhee", "PIL", "huggingface_hub", "timm")


def setup_logging(settings: Settings) -> None:
    """One format on stderr at ``LOOKALIKE_LOG_LEVEL``; chatty libraries at WARNING."""
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # pymilvus logs a full traceback per failed RPC; the worker logs one line per outage instead
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    logging.getLogger("kafka.coordinator").setLevel(logging.ERROR)


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT: long-running loops poll it and finish their batch."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        log.info("received %s; finishing the current batch", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default (strings quoted, so an empty one reads ``''``), except ``None``,
    whose help text says where the value comes from instead (usually a ``LOOKALIKE_*`` setting)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is argparse.SUPPRESS or action.help is None:
            return action.help
        if isinstance(action.default, str) and "%(default)" not in action.help:
            return f"{action.help} (default: %(default)r)"
        return super()._get_help_string(action)


def command_name() -> str:
    """``lookalike`` as the user can type it here, for hints such as "stop it with: … stack down".

    ``infra/install.sh`` puts the script in ``.venv/bin``, which is not on the PATH until the venv
    is activated; a hint naming a bare ``lookalike`` then answers "command not found". So: the bare
    name when the PATH finds this very script, else its path (relative when under the current
    directory, like ``.venv/bin/lookalike``)."""
    script = Path(sys.executable).parent / "lookalike"  # the venv's bin, not the interpreter it links to
    found = shutil.which("lookalike")
    if not script.exists() or (found is not None and Path(found).resolve() == script.resolve()):
        return "lookalike"
    relative = os.path.relpath(script)
    return relative if not relative.startswith("..") else str(script)
