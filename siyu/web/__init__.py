"""The web console: server-rendered pages (Jinja2 + HTMX + ECharts, vendored) at ``/``."""

from __future__ import annotations

import os

from fastapi import FastAPI
from starlette.responses import Response
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

from siyu.web.deps import LoginRequiredError, login_redirect
from siyu.web.rendering import STATIC_DIR

__all__ = ["install"]


class CachedStatic(StaticFiles):
    """Static files with caching headers: vendored libraries for a year (their content is
    pinned), the console's own files for an hour (revalidated by ETag after that)."""

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        path = str(scope.get("path", ""))
        if "/vendor/" in path:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        else:
            response.headers["Cache-Control"] = "public, max-age=3600"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def install(app: FastAPI) -> None:
    """Mount the console on ``app``: its pages, its static files, the login redirect."""
    from siyu.web.analytics_views import router as analytics_router
    from siyu.web.catalog_views import router as catalog_router
    from siyu.web.views import router

    app.mount("/static", CachedStatic(directory=STATIC_DIR), name="static")
    app.include_router(router)
    app.include_router(catalog_router)
    app.include_router(analytics_router)
    app.add_exception_handler(LoginRequiredError, login_redirect)
