"""``/docs``: Swagger UI served from this process, so the page works with no internet access.

FastAPI's own ``/docs`` page loads Swagger UI's script and stylesheet from a CDN: on an offline
server, or behind a proxy that blocks it, that is a blank page. The assets come instead from the
``swagger-ui-bundle-v2`` package (Swagger UI 5, which renders the OpenAPI 3.1 document FastAPI
writes; the older ``swagger-ui-bundle`` ships Swagger UI 4, which refuses 3.1), mounted under
``/docs/assets``. Like ``/openapi.json``, none of it needs the token.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs/assets"


def mount_docs(app: FastAPI) -> None:
    """Add ``/docs`` and its assets to an app made with ``docs_url=None``."""
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="swagger-ui-assets")

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = str(request.scope.get("root_path", "")).rstrip("/")  # behind a proxy that adds a prefix
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon-32x32.png",
        )
