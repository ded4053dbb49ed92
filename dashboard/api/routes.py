"""The ``/v1`` routes. Plain ``def`` functions: FastAPI runs them in its threadpool, so decoding,
the model and the Milvus and S3 calls never block the event loop.

Keys may contain slashes, so ``/objects/{key:path}/similar`` and ``/objects/{key:path}/image`` are
declared before ``/objects/{key:path}``, which would otherwise swallow them. The price: a key whose
last segment is literally ``similar`` or ``image`` cannot be read with ``GET /v1/objects/{key}``.

``POST /v1/search/text`` answers 409 on an index whose model embeds images only: the request is
fine, the index's state is what stands in the way, and a reindex with a CLIP model changes it
(docs/text-search.md). Text the model cannot read whole is a 422, like any other unusable parameter.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, File, HTTPException, Path, Query, Request, Security, UploadFile
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import Response

from dashboard.api.auth import token_matches
from dashboard.api.schemas import Duplicates, Group, ObjectRow, Problem, Result, Results, TextQuery
from dashboard.api.service import QueryService
from lookalike.duplicates import threshold_for
from lookalike.errors import BadInput, Unavailable
from lookalike.families import uncalibrated_message
from lookalike.window import Window

bearer = HTTPBearer(auto_error=False, scheme_name="token", description="LOOKALIKE_API_TOKEN")


def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
) -> None:
    """Declares the scheme in the OpenAPI document; ``app``'s guard has already checked the header."""
    if not token_matches(request.headers.get("authorization"), request.app.state.token):
        raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


def service(request: Request) -> QueryService:
    svc: QueryService = request.app.state.service
    return svc


ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": Problem, "description": text}
    for code, text in {
        401: "missing or wrong bearer token (checked before anything else)",
        413: "the request body is over LOOKALIKE_MAX_OBJECT_BYTES (told from Content-Length, before it is read)",
        422: "a parameter is missing, out of range or malformed (or since is after until)",
        503: "S3 or Milvus does not answer, or the index's model cannot be loaded here (the part named in detail)",
    }.items()
}
router = APIRouter(prefix="/v1", dependencies=[Depends(require_token)], responses=ERRORS, tags=["search"])

Service = Annotated[QueryService, Depends(service)]
K = Annotated[int, Query(ge=1, le=100, description="how many neighbours, at most 100")]
Prefix = Annotated[str, Query(max_length=1024, description="only keys that start with this")]
Since = Annotated[datetime | None, Query(description="uploaded at or after (ISO 8601; no zone means UTC)")]
Until = Annotated[datetime | None, Query(description="uploaded at or before (ISO 8601; no zone means UTC)")]
Key = Annotated[str, Path(description="object key in the configured bucket, URL-encoded; may contain slashes")]


def window(prefix: str, since: datetime | None, until: datetime | None) -> Window:
    limits = Window(prefix, since, until)
    if limits.problem() is not None:
        raise HTTPException(422, "since: must not be after until")
    return limits


@router.post(
    "/search",
    response_model=Results,
    responses={
        400: {"model": Problem, "description": "not a usable image (empty, not an image, corrupt, too small)"},
        413: {"model": Problem, "description": "over LOOKALIKE_MAX_OBJECT_BYTES or LOOKALIKE_MAX_IMAGE_PIXELS"},
    },
)
def search(
    svc: Service,
    image: Annotated[UploadFile, File(description="the query image (JPEG, PNG, GIF, WebP, BMP, TIFF)")],
    k: K = 10,
    prefix: Prefix = "",
    since: Since = None,
    until: Until = None,
) -> Results:
    """The indexed objects that look most like the uploaded image, best first."""
    limits = window(prefix, since, until)
    data = image.file.read(svc.settings.max_object_bytes + 1)  # one byte more tells "over the limit"
    found = svc.search_image(data, k, limits)
    return Results(results=[Result.of(n) for n in found.neighbours], took_ms=round(found.took_ms, 2))


TEXT_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": Problem, "description": "the body cannot be parsed as JSON"},
    409: {
        "model": Problem,
        "description": "the index's model embeds images only (a timm backbone): the detail names it and the "
        "reindex to a CLIP model that makes search by words possible (docs/text-search.md)",
    },
    422: {
        "model": Problem,
        "description": "text empty, only whitespace, or over the model's context (the detail names the token "
        "count and the limit: text is refused, never cut); a field missing, out of range or malformed; or "
        "since is after until",
    },
}


@router.post("/search/text", response_model=Results, responses=TEXT_ERRORS)
def search_text(svc: Service, query: Annotated[TextQuery, Body(description="what to look for, and where")]) -> Results:
    """The indexed objects that best match a description in words, best first. Needs an index made by a
    CLIP model (LOOKALIKE_MODEL=open_clip:<arch>), whose text tower embeds words into the images' space."""
    limits = window(query.prefix, query.since, query.until)
    found = svc.search_text(query.text, query.k, limits)  # BadText: 422, NoTextTower: 409 (app.classify)
    return Results(results=[Result.of(n) for n in found.neighbours], took_ms=round(found.took_ms, 2))


@router.get(
    "/objects/{key:path}/similar",
    response_model=Results,
    responses={404: {"model": Problem, "description": "the key is not indexed"}},
)
def similar(
    svc: Service, key: Key, k: K = 10, prefix: Prefix = "", since: Since = None, until: Until = None
) -> Results:
    """More like an indexed object (by its stored vector), the object itself left out. 404 if not indexed."""
    found = svc.similar(key, k, window(prefix, since, until))
    return Results(results=[Result.of(n) for n in found.neighbours], took_ms=round(found.took_ms, 2))


def threshold_in_force(svc: QueryService) -> float:
    """LOOKALIKE_DUPLICATE_THRESHOLD, else the calibrated one of the index's model family; a 409 naming
    the model when there is none: the request is fine, the index's model is what has no scale yet."""
    try:
        threshold, model = threshold_for(svc.settings.duplicate_threshold, svc.index, svc.settings.model)
    except Unavailable:
        svc.forget_index()  # as every query does: a Milvus that comes back is reconnected to
        raise
    if threshold is None:
        raise HTTPException(409, uncalibrated_message(model))
    return threshold


@router.get(
    "/duplicates",
    response_model=Duplicates,
    responses={
        409: {
            "model": Problem,
            "description": "no threshold given, LOOKALIKE_DUPLICATE_THRESHOLD unset, and none calibrated for the "
            "index's model family (a CLIP model): the detail names the model and how to calibrate one",
        },
        422: {"model": Problem, "description": "threshold or limit out of range, or a cursor not issued here"},
    },
)
def duplicates(
    svc: Service,
    threshold: Annotated[
        float | None,
        Query(
            ge=0.0,
            le=1.0,
            description="cosine similarity (default LOOKALIKE_DUPLICATE_THRESHOLD, else the one calibrated for "
            "the index's model family)",
        ),
    ] = None,
    prefix: Prefix = "",
    limit: Annotated[int, Query(ge=1, le=500, description="groups per page")] = 100,
    cursor: Annotated[str | None, Query(max_length=4096, description="next_cursor of the previous page")] = None,
) -> Duplicates:
    """Groups of near-duplicates (objects linked by their duplicate_of marks), sorted, one page."""
    t = threshold_in_force(svc) if threshold is None else threshold
    try:
        groups, nxt = svc.duplicates(t, prefix, limit, cursor)
    except ValueError as exc:
        raise HTTPException(422, f"cursor: {exc}") from exc
    return Duplicates(groups=[Group(keys=g.keys, max_distance=g.max_distance) for g in groups], next_cursor=nxt)


@router.get(
    "/objects/{key:path}/image",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "a JPEG that fits in size x size"},
        404: {"model": Problem, "description": "no such object in the bucket"},
        422: {"model": Problem, "description": "a parameter is out of range, or the stored object is no image"},
    },
)
def image(
    svc: Service, key: Key, size: Annotated[int, Query(ge=16, le=1024, description="longest side, px")] = 256
) -> Response:
    """A server-side thumbnail of an object in the bucket, so clients never need S3 credentials."""
    try:
        jpeg = svc.thumbnail(key, size)
    except BadInput as exc:  # the stored object, not the request, is at fault
        raise HTTPException(422, f"{key!r} cannot be shown: {exc}") from exc
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=60"})


@router.get(
    "/objects/{key:path}",
    response_model=ObjectRow,
    responses={404: {"model": Problem, "description": "the key is not indexed"}},
)
def get_object(svc: Service, key: Key) -> ObjectRow:
    """The indexed row of an object. 404 if it is not indexed; its detail ends "dead-lettered: <reason>"
    when the workers refused the object."""
    return ObjectRow.of(svc.settings.bucket, key, svc.row(key))
