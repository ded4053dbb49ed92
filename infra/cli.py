"""The ``lookalike`` command: the composition root where settings are built and every part is wired.

Each application registers its own subcommands from its own package (``producers.cli``,
``consumers.cli``, ``dashboard.cli``); this layer adds the ones that compose them (``stack``,
``search``, ``objects`` from ``infra.local.cli``, ``infra.commands.search``, ``infra.commands.objects``;
``reindex``), ``model export`` (torch and timm load only when it runs) and the dev tools (``eval``,
``bench``, registered from ``infra.commands`` so that no bench or eval code is imported until one of
them runs), builds the settings once and runs the chosen command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import consumers.cli
import dashboard.cli
import infra.commands.bench
import infra.commands.evaluation
import infra.commands.model
import infra.commands.objects
import infra.commands.search
import infra.local.cli
import infra.reindex.cli
import producers.cli
from lookalike.errors import LookalikeError
from lookalike.process import HelpFormatter, setup_logging
from lookalike.settings import Settings

DESCRIPTION = (
    "lookalike makes the images in an S3 bucket searchable by visual similarity: drop images in, "
    "and a second later `lookalike search IMAGE` (or the dashboard) finds the ones that look alike."
)
EPILOG = (
    "Settings come from LOOKALIKE_* variables or a .env file; see docs/operations.md. "
    "`lookalike COMMAND --help` for more."
)


# ---------------------------------------------------------------- the root
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lookalike", description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    apps = (
        infra.local.cli,
        infra.commands.search,
        infra.commands.objects,
        producers.cli,
        consumers.cli,
        dashboard.cli,
        infra.commands.evaluation,
        infra.commands.bench,
        infra.commands.model,
        infra.reindex.cli,
    )
    for app in apps:  # the dev tools register from infra.commands: their code loads only when they run
        app.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except Exception as exc:
        print(f"lookalike: bad settings: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings)
    try:
        return int(args.func(args, settings))
    except (LookalikeError, FileNotFoundError) as exc:
        print(f"lookalike: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
