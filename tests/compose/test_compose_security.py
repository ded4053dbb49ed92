"""The deployed stack is locked down: loopback by default, logins required, no placeholder secrets.

Checked on the compose file rendered with the example .env (there is no Docker engine here); the
secrets guard script runs for real.
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from tests.compose.compose import (
    APP,
    COMPOSE,
    DEPLOY,
    GUARD,
    GUARD_SCRIPT,
    SECRETS,
    MissingVariable,
    env_map,
    load,
    required_variables,
)
from tests.helpers import PYTHON, free_port


# ---------------------------------------------------------------- locked down: loopback, logins, no placeholders
def _published(services: dict[str, Any]) -> dict[str, list[tuple[str, str, str]]]:
    """Each service's ports as (host address, host port, container port); a mapping without an
    address ("8501:8501") binds every interface and comes out as address "" here."""
    out: dict[str, list[tuple[str, str, str]]] = {}
    for name, svc in services.items():
        for port in svc.get("ports") or []:
            assert isinstance(port, str), f"{name}: long-syntax ports are not checked here: {port!r}"
            parts = port.split(":")
            address, host, container = (
                parts if len(parts) == 3 else ("", *parts[-2:]) if len(parts) == 2 else ("", "", port)
            )
            out.setdefault(name, []).append((address, host, container))
    return out


def _secrets_only(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k in required_variables()}


def test_every_published_port_is_on_loopback_by_default(env: dict[str, str]) -> None:
    for given in (env, _secrets_only(env)):  # the example .env, and one that sets no address at all
        published = _published(load(given)["services"])
        assert set(published) == {"minio", "milvus", "dashboard", "api"}
        for name, ports in published.items():
            for address, host, container in ports:
                assert address == "127.0.0.1", f"{name} publishes {host}->{container} on {address or 'every interface'}"


def test_publishing_to_the_network_is_an_opt_in_and_never_the_console(env: dict[str, str]) -> None:
    open_env = {**env, "LOOKALIKE_PUBLISH_ADDRESS": "0.0.0.0", "MINIO_PUBLISH_ADDRESS": "0.0.0.0"}
    published = _published(load(open_env)["services"])
    assert [a for a, _, _ in published["dashboard"]] == ["0.0.0.0"]
    assert [a for a, _, _ in published["api"]] == ["0.0.0.0"]
    minio = {container: address for address, _, container in published["minio"]}
    assert minio == {"9000": "0.0.0.0", "9001": "127.0.0.1"}, "the MinIO console stays on loopback"
    assert [a for a, _, _ in published["milvus"]] == ["127.0.0.1"]
    dashboard_only = _published(load({**env, "LOOKALIKE_PUBLISH_ADDRESS": "0.0.0.0"})["services"])
    assert {a for a, _, _ in dashboard_only["minio"]} == {"127.0.0.1"}, "one opt-in does not open the other"


def test_dashboard_and_api_cannot_start_without_their_password_and_token(env: dict[str, str]) -> None:
    for secret in ("LOOKALIKE_DASHBOARD_PASSWORD", "LOOKALIKE_API_TOKEN"):
        for value in (None, ""):
            given = {k: v for k, v in env.items() if k != secret}
            if value is not None:
                given[secret] = value
            with pytest.raises(MissingVariable, match=secret):
                load(given)
    services = load(env)["services"]
    assert env_map(services["dashboard"])["LOOKALIKE_DASHBOARD_PASSWORD"] == env["LOOKALIKE_DASHBOARD_PASSWORD"]
    assert env_map(services["api"])["LOOKALIKE_API_TOKEN"] == env["LOOKALIKE_API_TOKEN"]


def test_api_service_serves_the_query_api_with_a_health_check(services: dict[str, Any]) -> None:
    api = services["api"]
    cmd = api["command"]
    assert cmd[0] == "api" and cmd[cmd.index("--host") + 1] == "0.0.0.0"
    port = cmd[cmd.index("--port") + 1]
    assert [container for _, _, container in _published({"api": api})["api"]] == [port]
    check = api["healthcheck"]
    assert check["test"][:3] == ["CMD", "python", "-c"] and f"127.0.0.1:{port}/healthz" in check["test"][3]
    assert check.get("interval") and check.get("retries") and check.get("start_period")
    assert api["build"]["dockerfile"] == "infra/deploy/Dockerfile" and api["image"] == services["worker"]["image"]
    assert "8090" in (DEPLOY / "Dockerfile").read_text().split("EXPOSE", 1)[1].splitlines()[0]


def test_api_health_check_fails_while_healthz_says_degraded(services: dict[str, Any]) -> None:
    """The check's code, run against a stand-in /healthz answering 200 and then 503 (as the API does
    while S3 or Milvus is down)."""
    code = services["api"]["healthcheck"]["test"][3]
    port = free_port()
    program = (
        "import subprocess, sys, threading\n"
        "from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer\n"
        "status = [200]\n"
        "class H(BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(status[0] if self.path == '/healthz' else 404)\n"
        "        self.end_headers()\n"
        "    def log_message(self, *a):\n"
        "        pass\n"
        f"server = ThreadingHTTPServer(('127.0.0.1', {port}), H)\n"
        "threading.Thread(target=server.serve_forever, daemon=True).start()\n"
        f"ok = subprocess.run([sys.executable, '-c', {code.replace('8090', str(port))!r}]).returncode\n"
        "status[0] = 503\n"
        f"degraded = subprocess.run([sys.executable, '-c', {code.replace('8090', str(port))!r}]).returncode\n"
        "server.shutdown()\n"
        "print(ok, degraded)\n"
    )
    out = subprocess.run([PYTHON, "-c", program], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["0", "1"], out.stdout + out.stderr


def _depends(services: dict[str, Any], name: str) -> set[str]:
    """Everything ``name`` waits for, directly or through what it waits for."""
    seen: set[str] = set()
    todo = list(services[name].get("depends_on") or {})
    while todo:
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            todo.extend(services[dep].get("depends_on") or {})
    return seen


def test_the_secrets_guard_runs_before_everything_else(services: dict[str, Any], env: dict[str, str]) -> None:
    guard = services[GUARD]
    assert not guard.get("depends_on"), "the guard waits for nothing"
    for name in services:
        if name != GUARD:
            assert GUARD in _depends(services, name), f"{name} can start before the secrets are checked"
    for name in (*APP, "minio", "kafka", "milvus-etcd", "milvus-minio"):
        assert services[name]["depends_on"][GUARD] == {"condition": "service_completed_successfully"}, name
    # it runs the script of this repository, and it is given every secret the example leaves as a placeholder
    assert "./check-secrets.sh:/check-secrets.sh:ro" in guard["volumes"]
    assert (COMPOSE.parent / "check-secrets.sh").resolve() == GUARD_SCRIPT
    assert guard["entrypoint"] == ["/bin/sh", "/check-secrets.sh"]
    placeholders = {k for k, v in env.items() if "change-me" in v}
    assert placeholders == set(SECRETS) and placeholders <= set(env_map(guard)), placeholders - set(env_map(guard))


def _run_guard(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The guard script as its container runs it: plain sh, only the variables compose gives it."""
    base = {"PATH": "/usr/bin:/bin", "HOME": "/root", "HOSTNAME": "init-secrets"}
    return subprocess.run(["sh", str(GUARD_SCRIPT)], env={**base, **env}, capture_output=True, text=True, timeout=30)


def test_guard_script_refuses_every_placeholder_and_passes_real_secrets(services: dict[str, Any]) -> None:
    given = env_map(services[GUARD])  # interpolated from .env.example: the placeholders a user copies
    out = _run_guard(given)
    assert out.returncode == 1, out.stdout + out.stderr
    for secret in SECRETS:
        assert f"  {secret}\n" in out.stderr
    assert "change-me-" not in out.stdout + out.stderr.replace("'change-me'", ""), "values are never printed"

    real = {k: f"{k.lower()}-Zr4p9qT2x" if "change-me" in v else v for k, v in given.items()}
    out = _run_guard(real)
    assert out.returncode == 0 and "no 'change-me' placeholder left" in out.stdout, out.stdout + out.stderr

    for secret in SECRETS:  # one placeholder left, in any spelling, is enough to refuse
        out = _run_guard({**real, secret: "CHANGE-ME"})
        assert out.returncode == 1 and out.stderr.count("\n  ") == 1 and f"  {secret}\n" in out.stderr, out.stderr


def test_guard_script_is_valid_posix_shell() -> None:
    result = subprocess.run(["sh", "-n", str(GUARD_SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
