"""One router and the command groups for every analysis; ``create_app`` and the CLI import
only this module. Each analysis module has its ``router`` and registers its commands on the
apps in :mod:`siyu.analytics.cli_app` when imported."""

from __future__ import annotations

from fastapi import APIRouter

from siyu.analytics import metrics_api
from siyu.analytics.cli_app import analytics_app, experiments_app

router = APIRouter()
router.include_router(metrics_api.router)

__all__ = ["analytics_app", "experiments_app", "router"]
