"""What CLI commands share: error printing, settings, the stores (opened from settings and
closed after), reading files. Domain command modules import from here, never from
:mod:`siyu.cli`, which imports them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
import yaml
from rich.console import Console
from sqlalchemy.orm import Session

from siyu.core.config import Settings, get_settings
from siyu.core.errors import InvalidInputError, SiyuError
from siyu.core.i18n import N_, set_default_locale
from siyu.core.i18n import gettext as _
from siyu.core.logging import configure_logging
from siyu.events import EventStore, open_event_store

P = ParamSpec("P")
R = TypeVar("R")
console = Console()
err_console = Console(stderr=True)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Print a SiyuError as message + hint and exit 2, instead of a traceback."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except SiyuError as exc:
            err_console.print(f"[bold red]{_('Error')}:[/] {exc.render()}", highlight=False)
            for problem in exc.errors[1:]:
                err_console.print(f"  - {problem}", highlight=False)
            hint = exc.render_hint()
            if hint:
                err_console.print(f"[yellow]{_('What to do')}:[/] {hint}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper


def cli_settings() -> Settings:
    """The settings, with messages in their language and logging configured."""
    # Speak the requested language even when another setting is what is wrong.
    set_default_locale(os.environ.get("SIYU_LANG", "zh-CN"))
    settings = get_settings()
    set_default_locale(settings.lang)
    configure_logging(settings.log_level)
    return settings


@contextmanager
def open_stores() -> Iterator[tuple[Settings, Session, EventStore]]:
    """Settings, a database session (committed on success) and the event store."""
    from siyu.store import open_database
    from siyu.store.migrate import require_current

    settings = cli_settings()
    database = open_database(settings.resolved_database_url)
    try:
        require_current(database)
        with (
            open_event_store(settings.resolved_events_url) as events,
            database.unit_of_work() as session,
        ):
            yield settings, session, events
    finally:
        database.dispose()


def read_text_file(file: Path) -> str:
    """A UTF-8 file's text, or a clear error naming it."""
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            N_("Cannot read {path}: {reason}"), path=str(file), reason=str(exc)
        ) from None


def read_yaml_file(file: Path) -> Any:
    """A YAML (or JSON) file's document, or a clear error naming the file and the line."""
    text = read_text_file(file)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInputError(
            N_("Cannot read {path}: {reason}"), path=str(file), reason=str(exc)
        ) from None
