"""The serving image has no torch: every pod that embeds gets the ONNX export from an init container
that runs `lookalike model export` on the model image into its /cache (as compose's init-model does),
the reindex Job runs on the model image, and model.runtime torch moves the embedding pods onto it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.chart.helm import CHART, EXAMPLES, render
from tests.chart.objects import Doc, containers, env, named, of_kind, pod_specs
from tests.chart.schemas import KEDA_CRDS, kubernetes_error

VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
APP_VERSION = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
APP_IMAGE = f"{VALUES['image']['repository']}:{APP_VERSION}"
MODEL_IMAGE = f"{APP_IMAGE}-model"
EMBEDDING = ("worker", "api", "dashboard")
EXPORT_PEAK_MIB = 1219 * 10**6 / 2**20  # MB while exporting on an empty cache (values.yaml's comment)
BRIDGE_BACKFILL = next(path for path in EXAMPLES if path.stem == "bridge-backfill")


def pod(docs: list[Doc], kind: str, component: str) -> Doc:
    spec: Doc = named(docs, kind, component)["spec"]["template"]["spec"]
    return spec


def export_init(spec: Doc) -> Doc:
    (found,) = [c for c in spec.get("initContainers", []) if c["name"] == "model-export"]
    return found


def mebibytes(quantity: str) -> float:
    units = {"Mi": 1.0, "Gi": 1024.0, "M": 10**6 / 2**20, "G": 10**9 / 2**20}
    unit = next(u for u in sorted(units, key=len, reverse=True) if quantity.endswith(u))
    return float(quantity.removesuffix(unit)) * units[unit]


@pytest.fixture(scope="module")
def torch_runtime(helm: Path) -> list[Doc]:
    """runtime torch with the bridge and the backfill on: which pods move to the model image."""
    return render(helm, [BRIDGE_BACKFILL], sets=["model.runtime=torch", "reindex.enabled=true", "reindex.model=x"])


@pytest.fixture(scope="module")
def own_images(helm: Path) -> tuple[list[Doc], list[Doc]]:
    """(the app's tag only, both images named): how the model image follows image.*."""
    only_tag = render(helm, sets=["image.repository=reg.example/lookalike", "image.tag=1.2.3"])
    named_both = render(helm, sets=["image.tag=1.2.3", "image.model.repository=reg.example/m", "image.model.tag=cpu"])
    return only_tag, named_both


def test_each_embedding_pod_exports_the_model_from_the_model_image_first(defaults: list[Doc]) -> None:
    for component in EMBEDDING:
        spec = pod(defaults, "Deployment", component)
        init, (main,) = export_init(spec), spec["containers"]
        assert init["args"] == ["model", "export"], component
        assert init["image"] == MODEL_IMAGE and main["image"] == APP_IMAGE, component
        assert init["envFrom"] == main["envFrom"], f"{component}: the same LOOKALIKE_* settings as the app"
        assert env(init)["LOOKALIKE_THREADS"]["value"] == env(init)["OMP_NUM_THREADS"]["value"], component
        assert not [n for n in env(init) if "valueFrom" in env(init)[n]], f"{component}: exporting needs no secret"
        mounts = {m["mountPath"]: m["name"] for m in init["volumeMounts"]}
        assert mounts == {"/tmp": "tmp", "/cache": "cache"}, f"{component}: writes only to /tmp and /cache"
        assert {"name": "cache", "mountPath": "/cache"} in main["volumeMounts"], f"{component}: reads that cache"
        context = init["securityContext"]
        assert context["runAsNonRoot"] is True and context["readOnlyRootFilesystem"] is True, component
        assert context["allowPrivilegeEscalation"] is False and context["capabilities"]["drop"] == ["ALL"]
        assert spec["securityContext"]["runAsUser"] != 0, component
        assert mebibytes(init["resources"]["limits"]["memory"]) > EXPORT_PEAK_MIB, f"{component}: an export fits"
        assert mebibytes(init["resources"]["requests"]["memory"]) >= EXPORT_PEAK_MIB, component


def test_every_app_image_pod_with_a_cache_has_the_export_in_it_first(rendered: dict[str, list[Doc]]) -> None:
    """In every example: the backfill Job too, after the checkpoint copy, reading /models when mounted."""
    for values, docs in sorted(rendered.items()):
        for owner, spec in pod_specs(docs):
            where = f"{values}: {owner['metadata']['name']}"
            main = spec["containers"][0]
            if main["image"] != APP_IMAGE or "cache" not in {v["name"] for v in spec["volumes"]}:
                assert "model-export" not in {c["name"] for c in containers(spec)}, where
                continue
            names = [c["name"] for c in spec["initContainers"]]
            assert names[-1] == "model-export", f"{where}: {names}"
            app_mounts = {m["mountPath"] for m in main["volumeMounts"]}
            init_mounts = {m["mountPath"] for m in export_init(spec)["volumeMounts"]}
            assert init_mounts == app_mounts & {"/tmp", "/cache", "/models"}, where


def test_an_export_on_a_shared_claim_is_made_once_for_every_pod(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["offline-model"]
    claims = set()
    for component in EMBEDDING:
        spec = pod(docs, "Deployment", component)
        volumes = {v["name"]: v for v in spec["volumes"]}
        claims.add(volumes["cache"]["persistentVolumeClaim"]["claimName"])
        mounts = {m["mountPath"]: m for m in export_init(spec)["volumeMounts"]}
        assert mounts["/models"]["readOnly"] is True and mounts["/cache"]["name"] == "cache", component
    assert claims == {"lookalike-model-cache"}


def test_the_reindex_job_builds_on_the_model_image(rendered: dict[str, list[Doc]]) -> None:
    (job,) = of_kind(rendered["reindex"], "Job")
    spec = job["spec"]["template"]["spec"]
    assert spec["containers"][0]["image"] == MODEL_IMAGE
    assert "initContainers" not in spec, "it exports the new model itself, with the torch it has"
    assert {"name": "cache", "mountPath": "/cache"} in spec["containers"][0]["volumeMounts"]


def test_runtime_torch_runs_the_embedding_pods_on_the_model_image(torch_runtime: list[Doc]) -> None:
    for kind, component in [*(("Deployment", c) for c in EMBEDDING), ("Job", "backfill"), ("Job", "reindex-x")]:
        spec = pod(torch_runtime, kind, component)
        assert spec["containers"][0]["image"] == MODEL_IMAGE, component
        assert "initContainers" not in spec, f"{component}: torch serves the model itself, no export"
    assert pod(torch_runtime, "Deployment", "bridge")["containers"][0]["image"] == APP_IMAGE, "no model there"
    errors = [error for doc in torch_runtime if doc["kind"] not in KEDA_CRDS and (error := kubernetes_error(doc))]
    assert not errors, errors


def test_the_model_image_follows_the_app_image_unless_named(own_images: tuple[list[Doc], list[Doc]]) -> None:
    only_tag, named_both = own_images
    spec = pod(only_tag, "Deployment", "worker")
    assert spec["containers"][0]["image"] == "reg.example/lookalike:1.2.3"
    assert export_init(spec)["image"] == "reg.example/lookalike:1.2.3-model"
    spec = pod(named_both, "Deployment", "api")
    assert (spec["containers"][0]["image"], export_init(spec)["image"]) == ("lookalike:1.2.3", "reg.example/m:cpu")
