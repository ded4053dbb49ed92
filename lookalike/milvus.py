"""The Milvus connection: the client, every call through one wrapper, errors sorted by code, literals.

Why one module: the index and the alias bookkeeping (``versions``) both talk to Milvus, and both need
the same two answers. *Is this failure an outage?* Then the caller retries the whole batch and
commits nothing. *Or is it a refusal?* Then it is about what was sent, and the worker bisects the
batch down to the objects that cause it (``consumers.bisect``). The answer comes from the gRPC
status and the Milvus error code only, never from words in a message: a message that happens to
say "server" must not turn a refusal into an endless retry.

String literals for filter expressions are built in ``lookalike.filters`` (no client needed there).

Every call is counted here, by the caller's stage and the client method (``CALLS``), so the round
trips a batch costs are measured in one place (the worker exports them as
``lookalike_milvus_calls_total``; ``lookalike bench`` reports them per batch).
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from pymilvus import MilvusClient, MilvusException
from pymilvus.exceptions import ConnectError, ConnectionNotExistException, MilvusUnavailableException

from lookalike.errors import LookalikeError, Unavailable

log = logging.getLogger(__name__)

# pymilvus pings every 10 s even on an idle channel; a gRPC server's default policy (one ping per
# 5 min without data, 2 strikes) answers that with GOAWAY "too_many_pings", and the next call on the
# shared channel fails as if Milvus were down. Ping only while calls are in flight.
GRPC_OPTIONS = {"grpc.keepalive_permit_without_calls": False, "grpc.keepalive_time_ms": 60_000}

# gRPC statuses that say the server (or the path to it) is not answering now: retry, never blame data.
# UNAUTHENTICATED and PERMISSION_DENIED refuse every object alike (a wrong token), so they wait for
# an operator like an outage instead of dead-lettering the whole stream. RESOURCE_EXHAUSTED is what
# gRPC says of a message over its size limit, which halving the batch cures: a refusal, as are
# INTERNAL and UNKNOWN, which a request can cause every time it is sent.
OUTAGE_STATUSES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
    }
)

# Milvus error codes (``merr`` in Milvus 2.3+; the first ones are also pymilvus' client codes) that
# mean "not now": 1 service not ready, 2 service unavailable / connect failed, 3 memory limit,
# 4 too many requests, 7 disk limit, 8 rate limit, 9 force deny (quota), 11 time-tick delay,
# 12 resource insufficient, 101 collection not loaded, 104 collection not fully loaded (a restart
# reloads it), 503 unavailable.
OUTAGE_CODES = frozenset({1, 2, 3, 4, 7, 8, 9, 11, 12, 101, 104, 503})

# pymilvus raises these before or instead of a server status when there is no usable connection.
_OUTAGE_TYPES = (ConnectError, ConnectionNotExistException, MilvusUnavailableException)


class MilvusRefused(LookalikeError):
    """Milvus answered, and refused this request: retrying the same request cannot help.

    ``code`` is the Milvus error code or the gRPC status name; the worker splits a refused batch
    until the objects that are refused alone are found, and dead-letters those."""

    def __init__(self, code: object, detail: str) -> None:
        super().__init__(f"milvus refused the request (code {code}): {detail}")
        self.code = code
        self.detail = detail


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (from pymilvus or grpc) says Milvus is unreachable or not ready, by code only."""
    if isinstance(exc, grpc.RpcError):
        status = exc.code() if callable(getattr(exc, "code", None)) else None
        return status in OUTAGE_STATUSES
    if not isinstance(exc, MilvusException):
        return False
    if isinstance(exc, _OUTAGE_TYPES) or exc.retriable:
        return True
    if type(exc) is not MilvusException:  # pymilvus' typed client-side checks: ParamError, DataNotMatch...
        return False
    code = exc.code
    if isinstance(code, grpc.StatusCode):  # pymilvus gave up retrying a transport error
        return code in OUTAGE_STATUSES
    if code == 1 and exc.__cause__ is not None and not isinstance(exc.__cause__, (MilvusException, grpc.RpcError)):
        return False  # pymilvus wraps a Python error of its own (bad data) as code 1
    return isinstance(code, int) and code in OUTAGE_CODES


class CallCounter:
    """Milvus calls made by this process, by (stage, method): a plain, thread-safe counter.

    The stage is whatever ``stage`` set on the calling thread ("other" outside one); the core keeps
    no metrics library of its own, the worker exports these from its ``/metrics``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._stage: contextvars.ContextVar[str] = contextvars.ContextVar("milvus_stage", default="other")

    def add(self, method: str) -> None:
        with self._lock:
            self._counts[(self._stage.get(), method)] += 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Count the calls made inside this block (on this thread) under stage ``name``."""
        token = self._stage.set(name)
        try:
            yield
        finally:
            self._stage.reset(token)


CALLS = CallCounter()


def call(fn: Callable[..., Any], *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` with a timeout; an outage becomes ``Unavailable``, a refusal ``MilvusRefused``."""
    if timeout is not None and "timeout" not in kwargs:
        kwargs["timeout"] = timeout
    try:
        return fn(*args, **kwargs)
    except (MilvusException, grpc.RpcError) as exc:
        raise translate(exc) from exc


def translate(exc: MilvusException | grpc.RpcError) -> LookalikeError:
    """The project's error for a pymilvus or grpc one (see ``is_outage``)."""
    if isinstance(exc, grpc.RpcError):
        status = exc.code() if callable(getattr(exc, "code", None)) else None
        detail = exc.details() if callable(getattr(exc, "details", None)) else type(exc).__name__
        code: object = getattr(status, "name", status)
    else:
        detail, code = str(exc.message), getattr(exc.code, "name", exc.code)
    if is_outage(exc):
        return Unavailable("milvus", f"code {code}: {detail}")
    return MilvusRefused(code, detail)


class MilvusConnection:
    """One client and its timeout; ``call`` runs a client method through ``lookalike.milvus.call``."""

    def __init__(self, uri: str, token: str = "", timeout: float = 10.0) -> None:
        self.uri = uri
        self.timeout = timeout
        try:
            self.client = MilvusClient(uri=uri, token=token, timeout=timeout, grpc_options=GRPC_OPTIONS)
        except (MilvusException, grpc.RpcError) as exc:
            raise translate(exc) from exc

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``method`` of the client through ``call``, counted in ``CALLS`` (the one place that counts)."""
        CALLS.add(method)
        return call(getattr(self.client, method), *args, timeout=self.timeout, **kwargs)

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # closing a broken channel must not mask the real error
            log.debug("closing milvus client failed", exc_info=True)
