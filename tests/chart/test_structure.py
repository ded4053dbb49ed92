"""What the chart promises, checked on every rendering: probes, limits, non-root pods, scaling on
the configured group and topic within the partitions, secrets referenced and never inlined."""

from __future__ import annotations

import re

from tests.chart.objects import Doc, containers, env, named, of_kind, pod_specs, settings

SECRET_NAME = re.compile(r"TOKEN|PASSWORD|SECRET|ACCESS_KEY|SASL_USERNAME")


def each_rendering(rendered: dict[str, list[Doc]]) -> list[tuple[str, list[Doc]]]:
    return sorted(rendered.items())


def test_every_container_has_probes_resources_and_a_locked_down_context(rendered: dict[str, list[Doc]]) -> None:
    for values, docs in each_rendering(rendered):
        for owner, spec in pod_specs(docs):
            where = f"{values}: {owner['kind']}/{owner['metadata']['name']}"
            assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0, where
            assert spec["automountServiceAccountToken"] is False, where
            assert spec["enableServiceLinks"] is False, f"{where}: LOOKALIKE_API_PORT=tcp://... from a Service"
            for container in containers(spec):
                context = container["securityContext"]
                assert context["runAsNonRoot"] is True, where
                assert context["allowPrivilegeEscalation"] is False, where
                assert context["capabilities"]["drop"] == ["ALL"], where
                assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
                assert context["readOnlyRootFilesystem"] is True, where
                for need in ("requests", "limits"):
                    assert set(container["resources"][need]) >= {"cpu", "memory"}, f"{where}: {need}"
                mounts = {m["mountPath"] for m in container["volumeMounts"]}
                assert "/tmp" in mounts or container["name"] == "models", f"{where}: /tmp must be writable"
            if owner["kind"] == "Deployment":  # a Job serves nothing: it runs to completion instead
                for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                    assert kind in spec["containers"][0], f"{where}: {kind}"


def test_probes_ask_what_each_process_serves(defaults: list[Doc]) -> None:
    expected = {
        "worker": ("/metrics", "/readyz", 9400),
        "api": ("/metrics", "/healthz", 8090),
        "dashboard": ("/_stcore/health", "/_stcore/health", 8501),
    }
    for component, (live, ready, port) in expected.items():
        container = named(defaults, "Deployment", component)["spec"]["template"]["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == live
        assert container["readinessProbe"]["httpGet"]["path"] == ready
        assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        assert str(port) in container["args"], "the process listens where the probe asks"


def test_the_scaled_object_follows_the_workers_group_and_topic(defaults: list[Doc]) -> None:
    (scaled,) = of_kind(defaults, "ScaledObject")
    worker = named(defaults, "Deployment", "worker")
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": worker["metadata"]["name"],
    }
    (trigger,) = scaled["spec"]["triggers"]
    config = settings(defaults)
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["consumerGroup"] == config["LOOKALIKE_GROUP"] == "lookalike-workers"
    assert trigger["metadata"]["topic"] == config["LOOKALIKE_TOPIC"] == "lookalike.events"
    assert trigger["metadata"]["bootstrapServers"] == config["LOOKALIKE_KAFKA_BOOTSTRAP"]
    assert "replicas" not in worker["spec"], "the autoscaler owns the replica count"


def test_no_more_workers_than_partitions_and_no_scale_down_faster_than_the_drain(
    rendered: dict[str, list[Doc]],
) -> None:
    for values, docs in each_rendering(rendered):
        partitions = int(settings(docs)["LOOKALIKE_PARTITIONS"])
        worker = named(docs, "Deployment", "worker")
        grace = worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace >= 60, f"{values}: the worker's SIGTERM drain (compose: stop_grace_period 60s)"
        for scaled in of_kind(docs, "ScaledObject"):
            assert scaled["spec"]["maxReplicaCount"] <= partitions, values
            behavior = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
            assert all(p["periodSeconds"] >= grace for p in behavior["scaleDown"]["policies"]), values
        for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
            assert hpa["spec"]["maxReplicas"] <= partitions, values
            assert hpa["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"], values
            assert all(p["periodSeconds"] >= grace for p in hpa["spec"]["behavior"]["scaleDown"]["policies"]), values
        if not of_kind(docs, "ScaledObject") and not of_kind(docs, "HorizontalPodAutoscaler"):
            assert worker["spec"]["replicas"] <= partitions, values


def test_secrets_are_referenced_never_inlined(rendered: dict[str, list[Doc]]) -> None:
    for values, docs in each_rendering(rendered):
        assert not [key for key in settings(docs) if SECRET_NAME.search(key)], f"{values}: a secret in the ConfigMap"
        for _, spec in pod_specs(docs):
            for container in containers(spec):
                for name, item in env(container).items():
                    if SECRET_NAME.search(name):
                        assert "value" not in item and "secretKeyRef" in item["valueFrom"], f"{values}: {name}"


def test_each_process_gets_only_its_own_secrets(defaults: list[Doc]) -> None:
    def secret_env(component: str) -> set[str]:
        spec = named(defaults, "Deployment", component)["spec"]["template"]["spec"]
        return {name for name in env(spec["containers"][0]) if SECRET_NAME.search(name)}

    store = {"LOOKALIKE_S3_ACCESS_KEY", "LOOKALIKE_S3_SECRET_KEY"}
    assert secret_env("worker") == store
    assert secret_env("api") == store | {"LOOKALIKE_API_TOKEN"}
    assert secret_env("dashboard") == store | {"LOOKALIKE_DASHBOARD_PASSWORD"}


def test_only_the_api_and_the_dashboard_accept_traffic_by_default(defaults: list[Doc]) -> None:
    policies = of_kind(defaults, "NetworkPolicy")
    deny = named(defaults, "NetworkPolicy", "deny-ingress")
    assert deny["spec"]["policyTypes"] == ["Ingress"] and "ingress" not in deny["spec"]
    assert set(deny["spec"]["podSelector"]["matchLabels"]) == {"app.kubernetes.io/name", "app.kubernetes.io/instance"}
    allowed = {
        p["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"]: p["spec"]["ingress"]
        for p in policies
        if p is not deny
    }
    assert set(allowed) == {"api", "dashboard"}
    nginx = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]
    assert allowed["api"] == [{"from": nginx, "ports": [{"port": 8090, "protocol": "TCP"}]}]
    assert allowed["dashboard"] == [{"from": nginx, "ports": [{"port": 8501, "protocol": "TCP"}]}]


def test_every_deployment_has_a_disruption_budget(rendered: dict[str, list[Doc]]) -> None:
    for values, docs in each_rendering(rendered):
        budgets = [b["spec"]["selector"]["matchLabels"] for b in of_kind(docs, "PodDisruptionBudget")]
        for deployment in of_kind(docs, "Deployment"):
            assert deployment["spec"]["selector"]["matchLabels"] in budgets, f"{values}: {deployment['metadata']}"


def test_model_files_are_mounted_where_the_image_expects_them(rendered: dict[str, list[Doc]]) -> None:
    for values in ("offline-model", "model-image"):
        docs = rendered[values]
        weights = settings(docs)["LOOKALIKE_WEIGHTS"]
        assert weights.startswith("/models/"), values
        spec = named(docs, "Deployment", "worker")["spec"]["template"]["spec"]
        mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
        assert mounts["/models"]["readOnly"] is True and "/cache" in mounts, values
    shared = named(rendered["offline-model"], "Deployment", "api")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "cache", "persistentVolumeClaim": {"claimName": "lookalike-model-cache"}} in shared
    inits = named(rendered["model-image"], "Deployment", "worker")["spec"]["template"]["spec"]["initContainers"]
    (init,) = [c for c in inits if c["name"] == "models"]  # before model-export (test_model_image.py)
    assert init["command"] == ["cp", "-R", "/models/.", "/lookalike-models/"]
    assert init["volumeMounts"] == [{"name": "models", "mountPath": "/lookalike-models"}], "not over the source"
    assert settings(rendered["defaults"])["LOOKALIKE_MODEL_CACHE"] == "/cache/lookalike"
