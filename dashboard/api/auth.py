"""The bearer token every ``/v1`` route requires, compared in constant time."""

from __future__ import annotations

import hmac

from fastapi.responses import JSONResponse


def token_matches(header: str | None, token: bytes) -> bool:
    """``Authorization: Bearer <token>``; an empty configured token matches nothing."""
    scheme, _, value = (header or "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token)


def unauthorized() -> JSONResponse:
    return JSONResponse(
        {"detail": "missing or wrong bearer token"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
    )
