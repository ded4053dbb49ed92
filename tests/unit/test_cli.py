"""The ``lookalike`` command's parser: every application's subcommands, and help written for users."""

from __future__ import annotations

import argparse

import pytest

from infra.cli import build_parser

COMMANDS = {"stack", "search", "bridge", "upload", "worker", "backfill", "dashboard", "eval", "bench"}


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = sub
                found.update({f"{name} {k}": v for k, v in _subparsers(sub).items()})
    return found


def test_every_application_registers_its_commands() -> None:
    subs = _subparsers(build_parser())
    assert set(subs) >= COMMANDS
    assert {"stack up", "stack status", "stack down"} <= set(subs)


def test_help_opens_with_what_lookalike_does_for_a_user() -> None:
    text = build_parser().format_help()
    description = text.split("\n\n")[1]
    assert description.startswith("lookalike makes the images in an S3 bucket searchable by visual similarity")
    assert "edge where settings are built" not in text


@pytest.mark.parametrize("name", sorted(_subparsers(build_parser())))
def test_every_argument_has_help_and_shows_its_default(name: str) -> None:
    parser = _subparsers(build_parser())[name]
    flat = "".join(parser.format_help().split())  # wrapping may break a default across lines
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        assert action.help, f"lookalike {name}: {action.dest} has no help"
        if not action.option_strings or action.required:
            continue
        if action.default is None:  # the help names where the value comes from instead
            assert "default" in action.help, f"lookalike {name}: {action.dest} does not say its default"
        else:
            shown = {"".join(f"(default: {d})".split()) for d in (repr(action.default), str(action.default))}
            assert any(s in flat for s in shown), f"lookalike {name}: {action.dest} does not show its default"


@pytest.mark.parametrize(
    "argv",
    [
        ["upload", "a", "b", "--prefix", "p", "--bucket", "x", "--concurrency", "2", "--quiet"],
        ["worker", "--metrics-port", "9400", "--group", "g", "--max-outage", "5"],
        ["backfill", "--dry-run", "--prefix", "p", "--json"],
        ["search", "q.jpg", "-k", "3", "--json"],
        ["stack", "up", "--workers", "2", "--no-dashboard"],
        ["stack", "status", "--json"],
        ["stack", "down", "--keep-data"],
        ["dashboard", "--port", "8502", "--address", "0.0.0.0"],
        ["eval", "--dataset", "d", "--json", "--in-memory", "--stack", "private", "--workers", "2", "--keep"],
        ["bench", "--images", "i", "--n-ingest", "20", "--freshness-seconds", "3", "--batch-sizes", "1,4", "--json"],
        ["bridge"],
    ],
)
def test_the_flags_users_know_still_parse(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert callable(args.func)
