"""The compose file's settings against the app's own: every production setting in
``infra/deploy/.env.example``, the same defaults on both sides, secrets required, nothing undocumented.

A variable the compose file passes but ``Settings`` does not know, or a fallback that differs from
the app's default, would make a deployment behave unlike the local stack without any error.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from lookalike.settings import Settings
from tests.compose.compose import (
    APP,
    APP_SECRETS,
    COMPOSE,
    ENV_EXAMPLE,
    GPU_COMPOSE,
    SECRETS,
    BadInterpolation,
    MissingVariable,
    env_map,
    interpolate,
    load,
    read_env_file,
    required_variables,
)

# settings that only the local stack uses (bridge, state dir) or that the compose file sets per service
LOCAL_ONLY = {
    "bridge_host",
    "bridge_port",
    "bridge_token",
    "bridge_max_body",
    "bridge_subscribe_hosts",
    "bridge_max_inflight",
    "bridge_max_connections",
    "bridge_idle_timeout",
    "bridge_read_timeout",
    "state_dir",
    "metrics_port",
}
PER_SERVICE = {"dashboard_port", "api_host", "api_port"}  # command-line flags of their service
# compose-only variables with the LOOKALIKE_ prefix (not Settings): the image, the models folder, host binding
COMPOSE_ONLY = {"LOOKALIKE_IMAGE", "LOOKALIKE_MODEL_IMAGE", "LOOKALIKE_MODELS_DIR", "LOOKALIKE_PUBLISH_ADDRESS"}
ADDRESSES = {"s3_endpoint", "kafka_bootstrap", "milvus_uri"}  # container names in compose, 127.0.0.1 locally


def test_app_containers_get_exactly_the_lookalike_settings(services: dict[str, Any], env: dict[str, str]) -> None:
    every_app_secret = set().union(*APP_SECRETS.values())
    shared = {k for k in env if k.startswith("LOOKALIKE_")} - COMPOSE_ONLY - every_app_secret
    for name in APP:
        got = env_map(services[name])
        wanted = shared | APP_SECRETS[name]
        assert set(got) == wanted, f"{name}: missing {wanted - set(got)}, extra {set(got) - wanted}"
        for secret in ("MINIO_ROOT_PASSWORD", "MILVUS_MINIO_SECRET_KEY"):
            assert env[secret] not in got.values(), f"{name} must not see {secret}"


def test_env_example_holds_every_production_setting(env: dict[str, str], settings: Settings) -> None:
    fields = set(Settings.model_fields)
    named = {k.removeprefix("LOOKALIKE_").lower() for k in env if k.startswith("LOOKALIKE_")}
    compose_only = {k.removeprefix("LOOKALIKE_").lower() for k in COMPOSE_ONLY}
    not_settings = named - fields - compose_only
    assert not not_settings, f"LOOKALIKE_* names that Settings does not know (typos?): {not_settings}"
    missing = fields - named - LOCAL_ONLY - PER_SERVICE
    assert not missing, f"settings missing from infra/deploy/.env.example: {sorted(missing)}"
    assert settings.weights is None and settings.pretrained, "the example downloads weights (LOOKALIKE_WEIGHTS empty)"


def test_compose_fallbacks_match_the_settings_defaults() -> None:
    """Without infra/deploy/.env values (secrets aside) the stack runs the app's defaults, not other ones."""
    only_secrets = {k: v for k, v in read_env_file(ENV_EXAMPLE).items() if k in required_variables()}
    app = env_map(load(only_secrets)["services"]["worker"])
    defaults = Settings(_env_file=None)
    for key, value in app.items():
        field = key.removeprefix("LOOKALIKE_").lower()
        if field in ADDRESSES or key in only_secrets:
            continue
        default = getattr(defaults, field)
        if hasattr(default, "get_secret_value"):
            default = default.get_secret_value()
        default = defaults.dead_letter_topic if field == "dlq_topic" else default
        default = defaults.change_feed_topic if field == "feed_topic" else default
        if isinstance(default, bool):
            default = str(default).lower()
        if isinstance(default, list):
            default = ",".join(default)
        if field == "model_cache":  # the containers' cache volume, not the user's home
            default = "/cache/lookalike"
        assert value == ("" if default is None else str(default)), f"{key}: compose {value!r} vs Settings {default!r}"


def test_secrets_are_required_and_in_the_env_example(env: dict[str, str]) -> None:
    required = required_variables()
    assert {*SECRETS, "MINIO_ROOT_USER", "LOOKALIKE_S3_ACCESS_KEY", "KAFKA_CLUSTER_ID"} <= required
    assert required <= set(env), f"required but not in .env.example: {required - set(env)}"
    with pytest.raises(MissingVariable, match=r"MINIO_ROOT_USER|LOOKALIKE_S3|MILVUS_MINIO|KAFKA_CLUSTER_ID"):
        load({})
    for secret in SECRETS:
        assert "change-me" in env[secret], f"{secret} should be an obvious placeholder"
        assert len(env[secret]) >= 8, "MinIO refuses secrets shorter than 8 characters"


def test_every_variable_the_compose_file_uses_is_documented(env: dict[str, str]) -> None:
    text = COMPOSE.read_text() + GPU_COMPOSE.read_text()
    # ${VAR} and $VAR (a shell variable written with one $ would be compose's, and empty)
    used = set(re.findall(r"(?<!\$)\$\{?([A-Za-z_][A-Za-z0-9_]*)", text))
    gpu_only = {v for v in used if v.startswith("GPU_") or v == "LOOKALIKE_GPU_IMAGE"}
    assert used - gpu_only <= set(env), f"not in .env.example: {sorted(used - gpu_only - set(env))}"
    load(env, GPU_COMPOSE)  # parses and interpolates too


def test_interpolation_rejects_a_stray_dollar() -> None:
    with pytest.raises(BadInterpolation):
        interpolate("echo $(date)", {})
    assert interpolate("$$k ${A:-x} ${B-y} $C", {"B": "", "C": "c"}) == "$k x  c"


# ---------------------------------------------------------------- scripts and health checks really run
