"""One router and the command groups for every analysis; ``create_app`` and the CLI import
only this module. Each analysis module has its ``router`` and registers its commands on the
apps in :mod:`siyu.analytics.cli_app` when imported."""

from __future__ import annotations

from fastapi import APIRouter

from siyu.analytics import (
    attribution_api,
    funnels_api,
    metrics_api,
    paths_api,
    repurchase_api,
    retention_api,
)
from siyu.analytics.alerts import api as alerts_api
from siyu.analytics.cli_app import analytics_app, experiments_app
from siyu.analytics.experiments.router import router as experiments_router
from siyu.analytics.report import api as report_api

router = APIRouter()
router.include_router(metrics_api.router)
router.include_router(alerts_api.router)
router.include_router(retention_api.router)
router.include_router(repurchase_api.router)
router.include_router(funnels_api.router)
router.include_router(paths_api.router)
router.include_router(attribution_api.router)
router.include_router(experiments_router)
router.include_router(report_api.router)

report_app = report_api.report_app

__all__ = ["analytics_app", "experiments_app", "report_app", "router"]
