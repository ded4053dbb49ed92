"""Schema-driven fuzzing of the API: every operation of its own ``/openapi.json``, over the real index.

schemathesis reads the document the app serves and, per operation, sends generated requests, valid
(positive) and invalid (negative): keys with any characters, out-of-range numbers, malformed dates,
bodies that are no image, with the bearer token. Each answer must be what the document promises:
no 5xx (S3 and Milvus are up, so not even the documented 503), a documented status code, content
type, headers and body, and auth enforced (``ignored_auth`` resends a 2xx request without the token
and with a forged one). Valid requests must succeed unless the schema cannot express why not
(``beyond_the_schema``). Positive cases also name real keys and odd ones (``KEYS``) and upload real
images of every mode and format, so the happy paths run too, not only the 404s. A second run points
the app at an S3 and a Milvus that are down: then 503 naming the part is the only 5xx allowed.

The app runs in-process (schemathesis's ASGI transport) on the package's sample index
(``tests/api/conftest``): SeaweedFS, Tansu, Milvus Lite and a worker, all real.

Bounded and repeatable: the seed is fixed, hypothesis's example database is off, and each operation
gets ``LOOKALIKE_FUZZ_EXAMPLES`` cases per mode (default 25: under a minute on two cores). A longer
hunt, e.g. before a release (``LOOKALIKE_FUZZ_SEED`` picks other cases)::

    LOOKALIKE_FUZZ_EXAMPLES=1000 LOOKALIKE_FUZZ_SEED=7 .venv/bin/pytest tests/api/test_fuzz.py

A failure names the operation and prints the request that caught it as a ``curl`` line.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from PIL import Image
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance

from lookalike.filters import to_ms
from tests.api.conftest import TOKEN, Indexed
from tests.helpers import free_port

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("LOOKALIKE_FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("LOOKALIKE_FUZZ_SEED", "19"))
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UPLOAD = "POST /v1/search"
TEXT = "/v1/search/text"  # the sample index is a timm model's: a valid body gets the documented 409
# keys S3 allows that are not in the bucket: control characters, quotes, wildcards, U+FFFE, 1,024 bytes
ODD_KEYS = ["ctl/a\x18b.jpg", "a\x01b", "del\x7f.jpg", "q\"uo'te\\.jpg", "100%_x*.jpg", "\ufffe", "k" * 1024]


def load_schema(app: Any) -> Any:
    """The app's own document, fetched through the app, configured for these tests."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # The token is sent with every case (AUTH); ``ignored_auth`` takes it away and forges it itself.
    # Unknown query parameters are ignored, as most HTTP APIs do (docs/api.md): not a negative case.
    schema.config.generation.update(with_security_parameters=False, allow_extra_parameters=False)
    return schema


@pytest.fixture(scope="module")
def api_schema(indexed: Indexed, embedder: object) -> Iterator[Any]:
    """The schema of an app over the sample index; the lifespan the transport started ends with the module."""
    from dashboard.api.app import create_app

    app = create_app(indexed.settings, embedder=embedder)  # type: ignore[arg-type]
    try:
        yield load_schema(app)
    finally:
        asgi.shutdown_lifespans()


def images() -> st.SearchStrategy[bytes]:
    """Real images of any mode, size and format the API reads; the schema can only say "bytes"."""
    modes = st.sampled_from(["RGB", "RGBA", "L", "LA", "P", "1", "I;16", "CMYK", "F"])
    formats = st.sampled_from(["PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"])
    sides = st.integers(min_value=1, max_value=96)

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        mode, fmt, size = draw(modes), draw(formats), (draw(sides), draw(sides))
        image = Image.effect_noise(size, draw(st.integers(1, 128))).convert(mode)
        out = io.BytesIO()
        try:
            image.save(out, fmt)
        except (OSError, ValueError):  # a mode this format cannot store
            image.convert("RGB").save(out, fmt)
        return out.getvalue()

    return build()


def usable(data: bytes) -> bool:
    """An image the API must search with: it decodes, and is not too thin for the model's centre crop
    (the API answers a documented 400 below 8x8 pixels after the crop; 16 leaves room for any model)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return min(image.size) >= 16
    except Exception:
        return False


def beyond_the_schema(case: Any) -> bool:
    """Inputs the schema allows but the API rightly refuses, as documented: bytes that are no usable
    image (400), a cursor it did not issue (422), ``since`` after ``until`` (422), any search by words
    on this timm index (409; tests/integration/test_text_search.py searches a CLIP one)."""
    if case.operation.path == TEXT:
        return True
    query = case.query or {}
    if query.get("cursor") is not None:
        return True
    body = case.body if isinstance(case.body, dict) else {}
    if "image" in body and not (isinstance(body["image"], bytes) and usable(body["image"])):
        return True
    bounds = [query.get(name) for name in ("since", "until")]
    if None in bounds:
        return False
    since, until = (to_ms(datetime.fromisoformat(str(b).replace("Z", "+00:00"))) for b in bounds)
    return since > until


def cases(operation: Any, mode: GenerationMode, keys: list[str]) -> st.SearchStrategy[Any]:
    """schemathesis's cases; in positive mode also ``keys`` as the path's key, and for the upload real
    images and raw bytes as the file (the schema says only "bytes", so its generator sends text)."""
    generated = operation.as_strategy(generation_mode=mode)
    if not mode.is_positive:
        return generated
    if operation.label == UPLOAD:
        uploads = images() | st.binary(max_size=4096)
        return generated | uploads.flatmap(lambda data: operation.as_strategy(body={"image": data}))
    if "{key}" in operation.path:
        named = st.sampled_from(keys).flatmap(lambda key: operation.as_strategy(path_parameters={"key": key}))
        return generated | named
    return generated


# an absent header, a wrong or extended token, another scheme, no scheme, an empty token
WRONG_AUTH = [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN}x"}]
WRONG_AUTH += [{"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}, {"Authorization": "Bearer "}]


def test_every_operation_that_declares_the_token_refuses_requests_without_it(api_schema: Any, indexed: Indexed) -> None:
    """From the document: every ``/v1`` operation, and only those, declares the bearer scheme and a
    401; each answers a missing or wrong token with that 401, and the right one with a 200."""
    key = sorted(indexed.keys)[0]
    files = {"image": ("q.jpg", indexed.sample.path(key).read_bytes(), "image/jpeg")}
    secured = 0
    with asgi.get_client(api_schema.app) as client:
        for path, methods in api_schema.raw_schema["paths"].items():
            for method, spec in methods.items():
                assert bool(spec.get("security")) == path.startswith("/v1/"), (method, path)
                if not spec.get("security"):
                    continue
                secured += 1
                assert "401" in spec["responses"], (method, path)
                url, upload = path.replace("{key}", quote(key)), files if method == "post" else None
                body = {"json": {"text": "a dog"}} if path == TEXT else {"files": upload}
                for headers in WRONG_AUTH:
                    response = client.request(method, url, headers=headers, **body)
                    assert response.status_code == 401, (method, path, headers, response.text)
                    assert response.json() == {"detail": "missing or wrong bearer token"}
                    assert response.headers["www-authenticate"] == "Bearer"
                ok = 409 if path == TEXT else 200  # a timm index: no text tower
                assert client.request(method, url, headers=AUTH, **body).status_code == ok, (method, path)
    assert secured >= 5


def outage_503(ctx: Any, response: Any, case: Any) -> bool | None:
    """With S3 and Milvus down the only 5xx is a 503 that names the part (its body and documentation
    are checked by the other checks)."""
    if response.status_code < 500:
        return None
    assert response.status_code == 503, f"{case.operation.label}: {response.status_code} {response.text[:300]}"
    detail = response.json().get("detail", "")
    assert case.operation.path == "/healthz" or detail.startswith(("s3 unavailable", "milvus unavailable")), detail
    return True


def fuzz(operation: Any, mode: GenerationMode, keys: list[str], outage: bool = False) -> Any:
    """``EXAMPLES`` cases of one operation in one mode; the first failure, or None. Shrinking is off so
    the run stays bounded: the failure's message carries the request as a ``curl`` line either way."""

    @seed(SEED)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases(operation, mode, keys))
    def run(case: Any) -> None:
        excluded = [positive_data_acceptance] if mode.is_positive and beyond_the_schema(case) else []
        if outage:  # the document's 503, and only that, replaces "no 5xx"
            excluded.append(not_a_server_error)
        case.call_and_validate(headers=AUTH, excluded_checks=excluded, additional_checks=[outage_503] * outage)

    try:
        run()
    except Unsatisfiable:  # nothing can break this operation's schema (no parameters, or any string goes)
        return AssertionError("no case could be generated") if mode.is_positive else None
    except (Exception, FailureGroup) as exc:  # FailureGroup is a BaseExceptionGroup
        return exc
    return None


def fuzz_all(schema: Any, mode: GenerationMode, keys: list[str], outage: bool = False) -> None:
    """Every operation of the document, each fuzzed to its end; one assertion naming all that failed."""
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6, [op.label for op in operations]
    failures = {op.label: fuzz(op, mode, keys, outage) for op in operations}
    found = {label: exc for label, exc in failures.items() if exc is not None}
    assert not found, "\n\n".join(f"{label}:\n{exc}" for label, exc in found.items())


@pytest.mark.parametrize("mode", list(GenerationMode), ids=str)
def test_every_operation_answers_as_documented(api_schema: Any, indexed: Indexed, mode: GenerationMode) -> None:
    fuzz_all(api_schema, mode, sorted(indexed.keys) + ODD_KEYS)


def test_with_s3_and_milvus_down_only_a_documented_503(servers: dict[str, str], embedder: object) -> None:
    from dashboard.api.app import create_app
    from tests.conftest import make_settings

    dead = {"s3_endpoint": f"http://127.0.0.1:{free_port()}", "milvus_uri": f"http://127.0.0.1:{free_port()}"}
    settings = make_settings(servers, api_token=TOKEN, **dead)
    app = create_app(settings, embedder=embedder, milvus_timeout=2)  # type: ignore[arg-type]
    try:
        schema = load_schema(app)
        for mode in GenerationMode:
            fuzz_all(schema, mode, ["a/b.jpg", *ODD_KEYS[:2]], outage=True)
    finally:
        asgi.shutdown_lifespans()
