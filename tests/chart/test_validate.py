"""Every rendered object is valid: Kubernetes 1.30 schemas in strict mode, KEDA's against its CRD."""

from __future__ import annotations

import copy

import pytest

from tests.chart.objects import Doc, of_kind
from tests.chart.schemas import KEDA_CRDS, keda_errors, kubernetes_error


@pytest.fixture(scope="module", autouse=True)
def _validator_installed() -> None:
    try:
        import kubernetes_validate  # noqa: F401
    except ImportError:
        pytest.fail(
            "kubernetes-validate is not installed: run `bash infra/install.sh` (the dev extra) or "
            "`.venv/bin/pip install kubernetes-validate==1.37.0`",
            pytrace=False,
        )


def test_every_object_validates_against_kubernetes_1_30(rendered: dict[str, list[Doc]]) -> None:
    errors = [
        f"{values}: {error}"
        for values, docs in rendered.items()
        for doc in docs
        if doc["kind"] not in KEDA_CRDS and (error := kubernetes_error(doc))
    ]
    assert not errors, "\n".join(errors)


def test_keda_objects_validate_against_the_vendored_crds(rendered: dict[str, list[Doc]]) -> None:
    keda = [(values, doc) for values, docs in rendered.items() for doc in docs if doc["kind"] in KEDA_CRDS]
    assert {doc["kind"] for _, doc in keda} == set(KEDA_CRDS), "the examples cover every KEDA kind"
    errors = [f"{values}: {error}" for values, doc in keda for error in keda_errors(doc)]
    assert not errors, "\n".join(errors)


def test_the_checks_catch_what_they_should(defaults: list[Doc]) -> None:
    """The validators are not vacuous: an unknown field or a wrong type fails in both."""
    worker = copy.deepcopy(next(d for d in of_kind(defaults, "Deployment") if d["metadata"]["name"].endswith("worker")))
    worker["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    assert "livenesProbe" in (kubernetes_error(worker) or "")
    scaled = copy.deepcopy(of_kind(defaults, "ScaledObject")[0])
    scaled["spec"]["maxReplicas"] = 3
    scaled["spec"]["minReplicaCount"] = "one"
    errors = " ".join(keda_errors(scaled))
    assert "maxReplicas" in errors and "'one' is not of type 'integer'" in errors
