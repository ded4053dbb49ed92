"""Fixtures of the compose tests: the example .env, the compose file rendered with it, its services."""

from __future__ import annotations

from typing import Any

import pytest

from lookalike.settings import Settings
from tests.compose.compose import ENV_EXAMPLE, load, read_env_file


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def compose(env: dict[str, str]) -> dict[str, Any]:
    return load(env)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def settings(env: dict[str, str]) -> Settings:
    """What a worker built from the same .env would run with."""
    return Settings(_env_file=ENV_EXAMPLE)
