"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from siyu import __version__
from siyu.api import health, problems
from siyu.api.context import AppContext
from siyu.api.middleware import RequestContextMiddleware
from siyu.collect.router import TRACKING_PATHS
from siyu.collect.router import router as collect_router
from siyu.collect.writer import running_writer
from siyu.core.config import Settings, get_settings
from siyu.core.i18n import set_default_locale
from siyu.core.logging import configure_logging
from siyu.events import EventStore
from siyu.profiles.router import router as people_router


class TrackingCORS:
    """CORS for the tracking endpoints only: any origin may post events (the write key, not a
    cookie, authenticates them); the rest of the API stays same-origin."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=["*"],
            allow_methods=["POST"],
            allow_headers=["Authorization", "Content-Type", "Content-Encoding"],
            max_age=86400,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in TRACKING_PATHS:
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    events: EventStore | None = None,
    scheduler: bool = False,
) -> FastAPI:
    """Build the app. Stores are opened when it starts (lifespan) and closed when it stops.

    ``events`` lets a caller that already holds the event store (``siyu demo``) share it:
    an embedded DuckDB file admits one writing process. ``scheduler`` runs the scheduled work
    (``siyu.scheduler``) in the server, which owns the event store (``siyu serve`` does).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings or get_settings()
        configure_logging(resolved.log_level)
        set_default_locale(resolved.lang)
        context = AppContext.open(resolved, events=events)
        app.state.context = context
        try:
            background = _start_scheduler(context) if scheduler else None
            try:
                async with running_writer(context.events) as writer:
                    app.state.collect_writer = writer
                    yield
            finally:
                if background is not None:
                    background.stop(timeout=60)
        finally:
            from siyu.tags import runner

            runner.wait()
            if events is None:
                context.close()
            else:
                context.database.dispose()

    app = FastAPI(
        title="siyu API",
        version=__version__,
        summary="私域 — private-domain customer operations: "
        "collect, OneID, tags, journeys, loyalty, analytics.",
        lifespan=lifespan,
    )
    problems.install(app)
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(TrackingCORS)
    app.include_router(health.router)
    app.include_router(collect_router)
    from siyu.collect.webhooks.router import router as webhooks_router

    app.include_router(webhooks_router)
    app.include_router(people_router)
    from siyu.tags.router import router as tags_router

    app.include_router(tags_router)
    from siyu.segments.router import router as segments_router

    app.include_router(segments_router)
    from siyu.segments.tiers_api import router as tiers_router

    app.include_router(tiers_router)
    from siyu.analytics.api import router as analytics_router

    app.include_router(analytics_router)

    from siyu.web import install as install_console

    install_console(app)
    return app


def _start_scheduler(context: AppContext) -> Any:
    from siyu.scheduler import Scheduler

    interval = context.settings.scheduler_interval
    if interval <= 0 or context.events is None:
        return None
    background = Scheduler(context.database, context.events, context.settings, interval)
    background.start()
    return background
