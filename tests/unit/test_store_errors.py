"""S3 failures classified once: absent, outage (retry), or this object's own problem (dead letter)."""

from __future__ import annotations

import pytest
import urllib3
from minio.error import S3Error, ServerError

from lookalike.errors import BadInput, Unavailable
from lookalike.store import ObjectRefused, _error_code, _Missing, _translate


def _s3(code: str, status: int) -> S3Error:
    response = urllib3.HTTPResponse(body=b"", status=status)
    return S3Error(response, code, f"{code} happened", "/b/k", "req", "host", "b", "k")


def _raised(exc: BaseException) -> type[BaseException]:
    try:
        with _translate():
            raise exc
    except BaseException as out:  # the translated exception is the result under test
        return type(out)
    raise AssertionError("nothing raised")


@pytest.mark.parametrize(
    "exc, expected",
    [
        (_s3("NoSuchKey", 404), _Missing),
        (_s3("SlowDown", 503), Unavailable),
        (_s3("Throttling", 400), Unavailable),
        (_s3("InternalError", 500), Unavailable),
        (_s3("SomethingNew", 502), Unavailable),
        (_s3("InvalidAccessKeyId", 403), Unavailable),  # bad credentials refuse every object alike
        (_s3("NoSuchBucket", 404), ObjectRefused),
        (_s3("AccessDenied", 403), ObjectRefused),
        (_s3("InvalidObjectName", 400), ObjectRefused),
        (_s3("SomethingNew", 400), ObjectRefused),
        (ServerError("bad gateway", 502), Unavailable),
        (urllib3.exceptions.MaxRetryError(None, "/", "refused"), Unavailable),  # type: ignore[arg-type]
        (ConnectionResetError("reset"), Unavailable),
        (ValueError("object name with '.' or '..' path segment is not supported"), ObjectRefused),
    ],
)
def test_s3_errors_are_classified(exc: BaseException, expected: type[BaseException]) -> None:
    assert _raised(exc) is expected


def test_refused_objects_are_bad_input_with_the_code_in_the_reason() -> None:
    try:
        with _translate():
            raise _s3("AccessDenied", 403)
    except ObjectRefused as exc:
        assert isinstance(exc, BadInput) and str(exc).startswith("AccessDenied:")


def test_error_bodies_are_read_for_their_code() -> None:
    body = b"<?xml version='1.0'?><Error><Code>NoSuchKey</Code><Message>gone</Message></Error>"
    assert _error_code(body) == ("NoSuchKey", "gone")
    assert _error_code(b"<html>proxy error</html>")[0] in (None, "")  # parsed, but no Code element
    assert _error_code(b"plain text")[0] is None
