"""Dependencies every router may declare, as ``Annotated`` aliases (override them in tests)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from siyu.api.context import AppContext
from siyu.core.config import Settings
from siyu.core.errors import EventStoreError
from siyu.core.i18n import N_
from siyu.events import EventStore


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


def get_db_session(context: Annotated[AppContext, Depends(get_context)]) -> Iterator[Session]:
    """One unit of work per request: commits when the handler returns, rolls back on error."""
    with context.database.unit_of_work() as session:
        yield session


def get_event_store(context: Annotated[AppContext, Depends(get_context)]) -> EventStore:
    if context.events is None:
        raise context.events_error or EventStoreError(N_("The event store is not open"), path="?")
    return context.events


def get_settings_dep(context: Annotated[AppContext, Depends(get_context)]) -> Settings:
    return context.settings


Context = Annotated[AppContext, Depends(get_context)]
DbSession = Annotated[Session, Depends(get_db_session)]
Events = Annotated[EventStore, Depends(get_event_store)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
# A row id in a path: a positive 32-bit integer (PostgreSQL ``integer`` keys), so an absurd
# id is a 422, never a database overflow.
RowId = Annotated[int, Path(ge=1, le=2_147_483_647)]
