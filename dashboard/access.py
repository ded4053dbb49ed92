"""Who may use the dashboard and how much they may upload, free of Streamlit.

The dashboard shows every indexed image and lets anyone search the bucket, so a deployed one asks
for ``LOOKALIKE_DASHBOARD_PASSWORD`` first (compose requires it; the local stack, on 127.0.0.1 only,
leaves it empty: no login). The comparison is ``hmac.compare_digest``, so the time it takes says
nothing about how much of a guess was right.

Streamlit's uploader limit (``server.maxUploadSize``) is in MiB, whole numbers only; it is set to the
smallest number of MiB that holds ``LOOKALIKE_MAX_OBJECT_BYTES``, so nothing the workers would index
is refused at the door, and ``dashboard.query.run_query`` refuses the few bytes above the exact limit
with a sentence.
"""

from __future__ import annotations

import hmac
import math

from pydantic import SecretStr

MIB = 1024 * 1024


def login_required(password: SecretStr) -> bool:
    """An empty password means the operator chose no login (the local stack)."""
    return bool(password.get_secret_value())


def password_matches(given: str, password: SecretStr) -> bool:
    """``given`` is the configured password; never true while none is configured."""
    expected = password.get_secret_value().encode()
    return bool(expected) and hmac.compare_digest(given.encode(), expected)


def upload_limit_mb(max_object_bytes: int) -> int:
    """Streamlit's ``server.maxUploadSize`` (MiB, at least 1) for a byte limit."""
    return max(1, math.ceil(max_object_bytes / MIB))
