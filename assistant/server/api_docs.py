"""The API's interactive docs (`/docs`), served with Swagger UI's own files as the
`swagger-ui-py` package ships them (Swagger UI 5, which reads FastAPI's OpenAPI 3.1; the
`swagger-ui-bundle` package's 4.15 does not): FastAPI's default page loads them from a CDN,
which leaves it blank on a machine without the internet, and newsdesk runs offline."""

from __future__ import annotations

from pathlib import Path

import swagger_ui
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
_FILES = Path(swagger_ui.__file__).parent / "static"


def add_api_docs(app: FastAPI) -> None:
    """Serve `/docs` (Swagger UI over the app's OpenAPI document) from local files. The app
    must be built with `docs_url=None` and `redoc_url=None` (ReDoc has no packaged copy)."""
    app.mount(ASSETS, StaticFiles(directory=_FILES), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png")
