"""SNS subscription confirmation, done safely: only allow-listed hosts, no redirects, failures visible.

An SNS topic delivering to an HTTP endpoint first POSTs a ``SubscriptionConfirmation`` whose
``SubscribeURL`` the endpoint must GET. The URL comes from the request body, so fetching it blindly
would let anyone who can reach the bridge make it call any address (internal ones included). We
fetch it only when its host matches a configured pattern (SNS's own hosts by default), never follow
a redirect (it could lead anywhere), and report a failed fetch so the bridge can answer 5xx: a
subscription that was never confirmed delivers nothing, so it must not look like a success.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 64 * 1024


class SubscribeRefused(ValueError):
    """The ``SubscribeURL`` is missing, malformed or on a host that is not allow-listed (not fetched)."""


class ConfirmationFailed(RuntimeError):
    """The ``SubscribeURL`` was fetched but did not confirm (unreachable, error status, redirect)."""


def parse_patterns(text: str) -> list[str]:
    """``"sns.*.amazonaws.com, 127.0.0.1"`` -> the patterns, lower-cased, empties dropped."""
    return [p.strip().lower() for p in text.split(",") if p.strip()]


def host_matches(host: str, pattern: str) -> bool:
    """``*`` stands for exactly one DNS label, so ``sns.*.amazonaws.com`` matches
    ``sns.us-east-1.amazonaws.com`` but not ``sns.evil.example.amazonaws.com``."""
    labels, wanted = host.lower().rstrip(".").split("."), pattern.split(".")
    return len(labels) == len(wanted) and all(fnmatchcase(a, b) for a, b in zip(labels, wanted, strict=True))


def check_subscribe_url(url: Any, patterns: Sequence[str]) -> str:
    """The URL, if it is an http(s) URL on an allowed host; raises ``SubscribeRefused`` otherwise."""
    if not isinstance(url, str) or not url:
        raise SubscribeRefused("SubscriptionConfirmation without SubscribeURL")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018  (raises ValueError for a malformed port)
    except ValueError as exc:
        raise SubscribeRefused(f"malformed SubscribeURL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise SubscribeRefused("SubscribeURL is not an http(s) URL")
    if not any(host_matches(host, p) for p in patterns):
        raise SubscribeRefused(f"SubscribeURL host {host!r} is not allow-listed (LOOKALIKE_BRIDGE_SUBSCRIBE_HOSTS)")
    return url


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError with the 3xx status


_OPENER = urllib.request.build_opener(_NoRedirects)


def confirm(url: str, timeout: float = 10.0) -> None:
    """GET the (already checked) ``SubscribeURL``; raises ``ConfirmationFailed`` unless it answers 2xx."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            response.read(MAX_ANSWER_BYTES)
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        raise ConfirmationFailed(f"SubscribeURL answered {exc.code}") from exc
    except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections, bad URLs
        raise ConfirmationFailed(f"SubscribeURL could not be fetched: {exc}") from exc
    if not 200 <= status < 300:
        raise ConfirmationFailed(f"SubscribeURL answered {status}")
