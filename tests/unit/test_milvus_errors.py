"""Milvus errors are sorted by gRPC status and Milvus error code, never by words in the message.

The table is the contract: each code the project maps, and what it means for the worker (an outage
is retried whole; a refusal is bisected down to the objects that cause it). Every message below is
chosen to mislead a classifier that reads words ("server", "rpc", "timeout", "unavailable").
"""

from __future__ import annotations

import grpc
import pytest
from pymilvus import MilvusException
from pymilvus.exceptions import ConnectError, ParamError

from lookalike.errors import Unavailable
from lookalike.filters import in_list, literal
from lookalike.milvus import MilvusRefused, call, is_outage

MISLEADING = "server rpc timeout unavailable connect closed not ready deadline"


class FakeRpcError(grpc.RpcError):
    def __init__(self, status: grpc.StatusCode) -> None:
        self.status = status

    def code(self) -> grpc.StatusCode:
        return self.status

    def details(self) -> str:
        return MISLEADING


OUTAGE_CODES = [1, 2, 3, 4, 7, 8, 9, 11, 12, 101, 104, 503]
REFUSAL_CODES = [5, 6, 10, 100, 1100, 65535]
OUTAGE_STATUSES = ["UNAVAILABLE", "DEADLINE_EXCEEDED", "ABORTED", "CANCELLED", "UNAUTHENTICATED", "PERMISSION_DENIED"]
REFUSAL_STATUSES = [
    "INVALID_ARGUMENT",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "FAILED_PRECONDITION",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "RESOURCE_EXHAUSTED",
    "INTERNAL",
    "UNKNOWN",
]


@pytest.mark.parametrize("code", OUTAGE_CODES)
def test_milvus_codes_of_an_outage(code: int) -> None:
    assert is_outage(MilvusException(code, MISLEADING))


@pytest.mark.parametrize("code", REFUSAL_CODES)
def test_milvus_codes_of_a_refusal(code: int) -> None:
    assert not is_outage(MilvusException(code, "unavailable"))


@pytest.mark.parametrize("name", OUTAGE_STATUSES)
def test_grpc_statuses_of_an_outage(name: str) -> None:
    status = grpc.StatusCode[name]
    assert is_outage(FakeRpcError(status))
    assert is_outage(MilvusException(status, "retry budget spent"))  # pymilvus wraps what it retried


@pytest.mark.parametrize("name", REFUSAL_STATUSES)
def test_grpc_statuses_of_a_refusal(name: str) -> None:
    status = grpc.StatusCode[name]
    assert not is_outage(FakeRpcError(status))
    assert not is_outage(MilvusException(status, MISLEADING))


def test_the_server_s_own_retriable_flag_is_an_outage() -> None:
    assert is_outage(MilvusException(65535, "x", retriable=True))


def test_client_side_errors() -> None:
    assert is_outage(ConnectError(message="x"))  # no connection: nothing was refused
    assert not is_outage(ParamError(message=MISLEADING))  # pymilvus refused the data before sending
    try:
        try:
            raise ValueError("bad vector")
        except ValueError as inner:
            raise MilvusException(1, MISLEADING) from inner  # pymilvus wraps its own Python errors as 1
    except MilvusException as wrapped:
        assert not is_outage(wrapped)


def test_call_translates_by_code() -> None:
    def refuse(**_: object) -> None:
        raise MilvusException(6, "unknown escape sequence (server said so over rpc)")

    def down(**_: object) -> None:
        raise MilvusException(2, "Fail connecting")

    with pytest.raises(MilvusRefused) as refused:
        call(refuse, timeout=1)
    assert refused.value.code == 6
    with pytest.raises(Unavailable):
        call(down, timeout=1)


@pytest.mark.parametrize("ch", [chr(c) for c in [*range(1, 32), 127]])
def test_literal_writes_control_characters_raw_except_line_breaks(ch: str) -> None:
    text = f"images/a{ch}b.jpg"
    lit = literal(text)
    assert "\\u" not in lit and "\\x" not in lit  # Milvus Lite refuses both escapes
    expected = {"\n": "\\n", "\r": "\\r"}.get(ch, ch)
    assert lit == f'"images/a{expected}b.jpg"'


def test_literal_escapes_quotes_and_backslashes() -> None:
    assert literal('a"b\\c%_') == '"a\\"b\\\\c%_"'
    assert in_list(["x", 'y"'], field="duplicate_of") == 'duplicate_of in ["x","y\\""]'
