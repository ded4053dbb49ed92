"""Schema checks for rendered objects, offline: Kubernetes 1.30 (strict) and KEDA's own CRDs.

Built-in kinds go through ``kubernetes-validate`` (it bundles the 1.25-1.37 schemas; strict mode
rejects unknown fields). KEDA's kinds are not in it, so their CRDs are vendored in ``keda/`` (the
version and source are in each file's header) and their ``openAPIV3Schema`` is applied with
``jsonschema``, closed to unknown fields the way the API server's strict field validation is.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

KUBERNETES = "1.30.0"
KEDA = Path(__file__).resolve().parent / "keda"
KEDA_CRDS = {
    "ScaledObject": KEDA / "keda.sh_scaledobjects.yaml",
    "TriggerAuthentication": KEDA / "keda.sh_triggerauthentications.yaml",
}


def name_of(doc: dict[str, Any]) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def kubernetes_error(doc: dict[str, Any]) -> str | None:
    """Why ``doc`` is not a valid Kubernetes 1.30 object (strict), or None when it is."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{name_of(doc)}: {exc.message} at {'.'.join(str(p) for p in exc.path)}"
    except kubernetes_validate.SchemaNotFoundError as exc:
        return f"{name_of(doc)}: no Kubernetes {KUBERNETES} schema ({exc})"
    return None


def closed(schema: Any) -> Any:
    """A copy in which every object that lists its properties accepts no others.

    The API server prunes unknown fields of a custom resource, or rejects them under strict field
    validation (``kubectl apply --validate=strict``): a typo in a KEDA field would otherwise pass."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    copy = {key: closed(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        copy["additionalProperties"] = False
    return copy


@functools.cache
def keda_validator(kind: str) -> jsonschema.protocols.Validator:
    """The served schema of KEDA's ``kind`` (v1alpha1) from the vendored CRD."""
    crd = next(doc for doc in yaml.safe_load_all(KEDA_CRDS[kind].read_text()) if doc)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1" and v["served"])
    schema = closed(version["schema"]["openAPIV3Schema"])
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def keda_errors(doc: dict[str, Any]) -> list[str]:
    """Every way ``doc`` breaks its KEDA CRD's schema (empty: valid)."""
    if doc.get("apiVersion") != "keda.sh/v1alpha1":
        return [f"{name_of(doc)}: apiVersion {doc.get('apiVersion')!r} is not keda.sh/v1alpha1"]
    validator = keda_validator(doc["kind"])
    return [
        f"{name_of(doc)}: {error.message} at {'.'.join(str(p) for p in error.absolute_path)}"
        for error in validator.iter_errors(doc)
    ]
