"""Every module that declares tables, so metadata is complete for migrations and checks.

A domain adds its ``models`` module here when it gains tables.
"""

from __future__ import annotations

from importlib import import_module

from sqlalchemy import MetaData

MODEL_MODULES = (
    "siyu.privacy.models",
    "siyu.demo.models",
    "siyu.identity.models",
    "siyu.collect.importer.models",
    "siyu.collect.models",
    "siyu.collect.webhooks.models",
    "siyu.tags.models",
    "siyu.segments.models",
    "siyu.analytics.experiments.models",
    "siyu.analytics.alerts.models",
)


def load_metadata() -> MetaData:
    """Import every model module and return the shared metadata."""
    for module in MODEL_MODULES:
        import_module(module)
    from siyu.store.base import Base

    return Base.metadata
