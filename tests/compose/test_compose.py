"""The production compose file, checked structurally (there is no Docker engine on these machines).

It is read with ``infra/deploy/.env.example`` as the user's ``infra/deploy/.env`` (what ``cp`` gives them), and its
values are compared with what the app itself would use: ``lookalike.settings.Settings`` built from
the same file. A topic name, bucket or partition count that differs between MinIO, the init job
and the workers would lose events silently; these tests make it a failure instead.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lookalike.settings import Settings
from tests.compose.compose import (
    APP,
    COMPOSE,
    DEPLOY,
    ENV_EXAMPLE,
    GPU_COMPOSE,
    GUARD,
    INIT,
    LONG_RUNNING,
    ONE_SHOT,
    env_map,
    load,
    raw,
    read_env_file,
    shell_script,
)
from tests.helpers import PYTHON, REPO, free_port


def notify_targets(minio_env: dict[str, str]) -> dict[str, dict[str, str]]:
    """MINIO_NOTIFY_KAFKA_<KEY>_<ID> variables, grouped by target id."""
    targets: dict[str, dict[str, str]] = {}
    for name, value in minio_env.items():
        m = re.fullmatch(r"MINIO_NOTIFY_KAFKA_(ENABLE|BROKERS|TOPIC|QUEUE_DIR|QUEUE_LIMIT)_([A-Z0-9]+)", name)
        if m:
            targets.setdefault(m.group(2), {})[m.group(1)] = value
    return targets


def script_commands(script: str) -> Iterator[list[str]]:
    """Each non-comment line of an init script, split like the shell would (no expansion)."""
    for line in script.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            with_vars = re.sub(r'"\$(\w+)"', r"$\1", line)
            try:
                yield shlex.split(with_vars)
            except ValueError:  # heredoc JSON lines
                continue


# ---------------------------------------------------------------- the services and their order
def test_every_part_of_the_pipeline_is_a_service(services: dict[str, Any]) -> None:
    assert set(services) == {*LONG_RUNNING, *ONE_SHOT}
    assert raw()["name"] == "lookalike"


def test_long_running_services_have_health_checks_and_restart(services: dict[str, Any]) -> None:
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck") or {}
        assert check.get("test") and check["test"][0] in ("CMD", "CMD-SHELL"), f"{name} has no health check"
        assert check.get("interval") and check.get("retries"), f"{name}: health check without interval/retries"
        assert services[name].get("restart") == "unless-stopped", name
    for name in ONE_SHOT:
        assert services[name].get("restart") == "no", f"{name} is a one-shot job"
        assert "healthcheck" not in services[name]


def test_dependencies_wait_for_health_or_completion(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            want = "service_completed_successfully" if dep in ONE_SHOT else "service_healthy"
            assert cond == {"condition": want}, f"{name} -> {dep}: {cond}"
    # the app starts only once the topic, bucket, notification rule and Milvus are there
    for name in APP:
        assert set(services[name]["depends_on"]) == {GUARD, "init-kafka", "init-minio", "milvus", "init-model"}
    assert "init-kafka" in services["init-minio"]["depends_on"], "the rule must not publish to a missing topic"
    assert set(services["milvus"]["depends_on"]) == {"milvus-etcd", "milvus-minio"}


def test_dependency_graph_has_no_cycle(services: dict[str, Any]) -> None:
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"cycle: {' -> '.join((*path, name))}"
        if name not in done:
            for dep in services[name].get("depends_on") or {}:
                visit(dep, (*path, name))
            done.add(name)

    for name in services:
        visit(name, ())


# ---------------------------------------------------------------- MinIO -> Kafka, consistent with the app
def test_minio_publishes_to_the_topic_the_workers_read(services: dict[str, Any], settings: Settings) -> None:
    minio = env_map(services["minio"])
    targets = notify_targets(minio)
    assert len(targets) == 1, f"one Kafka target expected, got {sorted(targets)}"
    ((_, target),) = targets.items()
    assert target["ENABLE"] == "on"
    assert target["BROKERS"] == settings.kafka_bootstrap
    assert target["TOPIC"] == settings.topic
    worker = env_map(services["worker"])
    assert worker["LOOKALIKE_TOPIC"] == settings.topic
    assert worker["LOOKALIKE_KAFKA_BOOTSTRAP"] == settings.kafka_bootstrap
    # the broker address MinIO and the workers use is the kafka service's advertised listener
    kafka = env_map(services["kafka"])
    assert f"PLAINTEXT://{settings.kafka_bootstrap}" in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")


def test_minio_queues_events_on_a_volume_while_kafka_is_down(services: dict[str, Any]) -> None:
    minio = services["minio"]
    ((_, target),) = notify_targets(env_map(minio)).items()
    queue_dir = target.get("QUEUE_DIR")
    assert queue_dir, "without queue_dir MinIO drops events while Kafka is unreachable"
    mounts = {v.split(":")[1]: v.split(":")[0] for v in minio["volumes"]}
    assert queue_dir in mounts, f"queue_dir {queue_dir} must be a volume, not the container's disk"
    assert int(target["QUEUE_LIMIT"]) > 0


def test_init_adds_put_and_delete_rule_for_the_bucket(services: dict[str, Any], settings: Settings) -> None:
    init = services["init-minio"]
    init_env = env_map(init)
    ((target_id, _),) = notify_targets(env_map(services["minio"])).items()
    commands = list(script_commands(shell_script(init)))
    events = [c for c in commands if c[:3] == ["mc", "event", "add"]]
    assert len(events) == 1, commands
    args = [a for a in events[0] if not a.startswith("--ignore")]
    assert args[3] == "lk/$BUCKET" and init_env["BUCKET"] == settings.bucket
    assert args[4] == f"arn:minio:sqs::{target_id}:kafka"
    assert args[5:] == ["--event", "put,delete"]
    assert ["mc", "mb", "--ignore-existing", "lk/$BUCKET"] in commands
    # the app user init creates is the one the workers log in with
    assert init_env["APP_ACCESS_KEY"] == settings.s3_access_key
    assert init_env["APP_SECRET_KEY"] == settings.s3_secret_key.get_secret_value()
    assert ["mc", "admin", "user", "add", "lk", "$APP_ACCESS_KEY", "$APP_SECRET_KEY"] in commands


def test_init_creates_the_topic_with_the_apps_partitions(services: dict[str, Any], settings: Settings) -> None:
    init = env_map(services["init-kafka"])
    assert init["TOPIC"] == settings.topic
    assert init["DLQ_TOPIC"] == settings.dead_letter_topic
    assert int(init["PARTITIONS"]) == settings.partitions
    script = shell_script(services["init-kafka"])
    assert '--create --if-not-exists --topic "$TOPIC" --partitions "$PARTITIONS"' in script
    assert '--create --if-not-exists --topic "$DLQ_TOPIC"' in script
    assert '--alter --topic "$TOPIC" --partitions "$PARTITIONS"' in script, "raising the count must be possible"
    kafka = env_map(services["kafka"])
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", "a publish must not create a 1-partition topic"


def test_partitions_cover_the_planned_workers(compose: dict[str, Any], settings: Settings) -> None:
    replicas = int(compose["services"]["worker"]["deploy"]["replicas"])
    assert 1 <= replicas <= settings.partitions
    assert settings.partitions >= 4, "the example plans room to scale out beyond the default workers"


def test_kafka_runs_in_kraft_mode(services: dict[str, Any]) -> None:
    kafka = env_map(services["kafka"])
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "CONTROLLER://" in kafka["KAFKA_LISTENERS"] and kafka["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{kafka['KAFKA_NODE_ID']}@kafka:")
    assert kafka["CLUSTER_ID"] and not any("zookeeper" in k.lower() for k in kafka)
    assert "kafka-data:/var/lib/kafka/data" in services["kafka"]["volumes"]
    assert kafka["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"


def test_milvus_standalone_with_its_own_etcd_and_object_store(services: dict[str, Any], settings: Settings) -> None:
    milvus = services["milvus"]
    assert milvus["command"] == ["milvus", "run", "standalone"]
    menv = env_map(milvus)
    assert menv["ETCD_ENDPOINTS"] == "milvus-etcd:2379"
    assert menv["MINIO_ADDRESS"] == "milvus-minio:9000"
    storage = env_map(services["milvus-minio"])
    assert (menv["MINIO_ACCESS_KEY_ID"], menv["MINIO_SECRET_ACCESS_KEY"]) == (
        storage["MINIO_ROOT_USER"],
        storage["MINIO_ROOT_PASSWORD"],
    )
    assert settings.milvus_uri == "http://milvus:19530"
    assert all(p.startswith("127.0.0.1:") for p in milvus["ports"]), "Milvus is not for the outside world"


# ---------------------------------------------------------------- the app services
def test_workers_scale_out(services: dict[str, Any]) -> None:
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker, "--scale worker=N needs both absent"
    assert worker["command"][0] == "worker"
    assert worker["build"] == {
        "context": "../..",
        "dockerfile": "infra/deploy/Dockerfile",
        "args": worker["build"]["args"],
    }
    assert (COMPOSE.parent / worker["build"]["context"] / worker["build"]["dockerfile"]).resolve() == (
        DEPLOY / "Dockerfile"
    )
    for name, svc in services.items():
        assert "container_name" not in svc, f"{name}: container_name forbids two projects on one host"


def test_dashboard_listens_on_all_interfaces_of_its_container(services: dict[str, Any]) -> None:
    dash = services["dashboard"]
    cmd = dash["command"]
    assert cmd[0] == "dashboard" and cmd[cmd.index("--address") + 1] == "0.0.0.0"
    port = cmd[cmd.index("--port") + 1]
    assert any(p.endswith(f":{port}") for p in dash["ports"])
    assert port in " ".join(dash["healthcheck"]["test"])


@pytest.mark.parametrize("name", INIT)
def test_init_scripts_are_valid_shell(services: dict[str, Any], name: str, tmp_path: Path) -> None:
    script = tmp_path / f"{name}.sh"
    script.write_text(shell_script(services[name]))
    result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_worker_health_check_follows_the_ready_gauge(services: dict[str, Any]) -> None:
    """The check runs against the worker's real Prometheus endpoint (consumers.metrics) on a free port."""
    test = services["worker"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"] and "9400" in test[3]
    assert "9400" in services["worker"]["command"], "the check reads the port the worker serves"
    port = free_port()
    code = test[3].replace("9400", str(port))
    program = (
        "import subprocess, sys, time\n"
        "from consumers import metrics\n"
        f"metrics.serve({port})\n"
        f"before = subprocess.run([sys.executable, '-c', {code!r}]).returncode\n"
        "metrics.READY.set(1)\n"
        f"after = subprocess.run([sys.executable, '-c', {code!r}]).returncode\n"
        "print(before, after)\n"
    )
    out = subprocess.run([PYTHON, "-c", program], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.stdout.split() == ["1", "0"], out.stdout + out.stderr


def test_gpu_override_reserves_gpus_for_workers_only() -> None:
    gpu = load(read_env_file(ENV_EXAMPLE), GPU_COMPOSE)["services"]
    assert set(gpu) == {"worker"}
    devices = gpu["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert gpu["worker"]["build"]["dockerfile"] == "infra/deploy/Dockerfile"
    assert "cuda" in gpu["worker"]["build"]["args"]["BASE_IMAGE"]
    assert gpu["worker"]["build"]["args"]["EXTRAS"] == "model"  # torch runs the GPU; the serving image has none


def test_the_app_serves_the_export_that_init_model_makes(services: dict[str, Any]) -> None:
    """The app image has no torch (issue 20): init-model, in the model image, exports the configured
    model into the cache volume the app containers read, and every app container waits for it."""
    init = services["init-model"]
    assert init["command"] == ["model", "export"]
    assert init["build"]["args"]["EXTRAS"] == "model" and "EXTRAS" not in services["worker"]["build"]["args"]
    assert init["image"] != services["worker"]["image"]
    assert env_map(init) == env_map(services["worker"])  # the same model, weights and cache
    cache = [v for v in init["volumes"] if str(v).endswith(":/cache")]
    for name in APP:
        assert cache[0] in services[name]["volumes"], name
