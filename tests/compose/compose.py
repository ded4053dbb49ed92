"""Read ``infra/deploy/docker-compose.yml`` the way ``docker compose`` does, without a Docker engine.

There is no Docker on the test machines, so the structural tests parse the YAML (merge keys and
anchors included) and apply compose's variable interpolation themselves: ``$$`` is a literal ``$``;
``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}`` and ``${VAR?error}`` as in
the compose specification. Nested defaults are not supported, and the compose file does not use them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import REPO

INFRA = REPO / "infra"
DEPLOY = INFRA / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
GPU_COMPOSE = DEPLOY / "docker-compose.gpu.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"

_VAR = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


class MissingVariable(ValueError):
    """A ``${VAR:?message}`` whose variable is not set: compose refuses to start."""


class BadInterpolation(ValueError):
    """A ``$`` that is neither ``$$`` nor a variable: compose rejects the file."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    if "$" in _VAR.sub("", text):
        raise BadInterpolation(f"stray '$' (write '$$' for a literal one) in: {text[:200]!r}")

    def one(m: re.Match[str]) -> str:
        if m.group(1):
            return "$"
        name = m.group(2) or m.group(5)
        op, arg = m.group(3), m.group(4) or ""
        value = env.get(name)
        if op in (":-", "-"):
            unset = value is None or (op == ":-" and value == "")
            return arg if unset else str(value)
        if op in (":?", "?"):
            if value is None or (op == ":?" and value == ""):
                raise MissingVariable(f"{name}: {arg}")
            return value
        return value or ""

    return _VAR.sub(one, text)


def _walk(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_walk(n, env) for n in node]
    if isinstance(node, dict):
        return {k: _walk(v, env) for k, v in node.items()}
    return node


def raw(path: Path = COMPOSE) -> dict[str, Any]:
    """The file as YAML, anchors and ``<<`` merges applied, variables untouched."""
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), f"{path} is not a YAML mapping"
    return doc


def load(env: Mapping[str, str], path: Path = COMPOSE) -> dict[str, Any]:
    """The file as compose sees it with ``env`` (normally infra/deploy/.env) for interpolation."""
    return _walk(raw(path), env)


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """``KEY=VALUE`` lines; blank lines and ``#`` comments skipped (the .env format compose reads)."""
    out: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path}:{n}: not KEY=VALUE: {line!r}"
        assert key == key.strip() and re.fullmatch(r"[A-Z][A-Z0-9_]*", key), f"{path}:{n}: bad name {key!r}"
        out[key] = value
    return out


def env_map(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a dict (compose allows a mapping or a list of KEY=VALUE)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def shell_script(service: Mapping[str, Any]) -> str:
    """The script of an init service run as ``entrypoint: [sh, -ec]`` + ``command: [script]``."""
    entry = service.get("entrypoint")
    assert entry in (["/bin/sh", "-ec"], ["/bin/bash", "-ec"]), f"unexpected entrypoint {entry!r}"
    command = service["command"]
    assert isinstance(command, list) and len(command) == 1, "one script as the only command argument"
    return str(command[0])


# ---------------------------------------------------------------- names the compose tests share
APP = ("worker", "dashboard", "api")
INIT = ("init-kafka", "init-minio")
GUARD = "init-secrets"  # refuses to start anything while a "change-me" secret remains
MODEL_INIT = "init-model"  # exports the model the app serves (`lookalike model export`)
ONE_SHOT = (*INIT, GUARD, MODEL_INIT)
LONG_RUNNING = ("minio", "kafka", "milvus-etcd", "milvus-minio", "milvus", *APP)
GUARD_SCRIPT = DEPLOY / "check-secrets.sh"
# each app container's own secret, which the other app containers must not see
APP_SECRETS = {"worker": set(), "dashboard": {"LOOKALIKE_DASHBOARD_PASSWORD"}, "api": {"LOOKALIKE_API_TOKEN"}}
SECRETS = (
    "MINIO_ROOT_PASSWORD",
    "LOOKALIKE_S3_SECRET_KEY",
    "MILVUS_MINIO_SECRET_KEY",
    "LOOKALIKE_API_TOKEN",
    "LOOKALIKE_DASHBOARD_PASSWORD",
)


def required_variables() -> set[str]:
    return set(re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE.read_text()))
