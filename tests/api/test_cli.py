"""The ``api`` subcommand's wiring and its refusal to run without a token: no servers needed."""

from __future__ import annotations

import argparse

import pytest


def test_cli_registers_the_api_subcommand() -> None:
    from dashboard.api.cli import cmd_api, register

    parser = argparse.ArgumentParser(prog="lookalike")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["api", "--host", "0.0.0.0", "--port", "9999"])
    assert (args.func, args.host, args.port) == (cmd_api, "0.0.0.0", 9999)
    defaults = parser.parse_args(["api"])
    assert (defaults.host, defaults.port) == (None, None)  # then LOOKALIKE_API_HOST / _PORT


def test_an_empty_token_refuses_to_start() -> None:
    from dashboard.api.app import ConfigError, create_app
    from lookalike.settings import Settings

    with pytest.raises(ConfigError, match="LOOKALIKE_API_TOKEN"):
        create_app(Settings(_env_file=None, api_token=""))  # type: ignore[arg-type]
