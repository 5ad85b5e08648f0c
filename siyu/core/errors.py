"""The one error tree of siyu.

Every error a user can cause or meet is a :class:`SiyuError`. It carries a stable
machine-readable ``code``, an HTTP ``status`` for the API boundary, a message id that is
translated when the error is shown (Babel catalogs, zh-CN by default), and its context as
fields (the setting, file, person or journey it is about). The API maps it to RFC 9457
``application/problem+json`` in one place (``siyu.api.problems``); the CLI prints its
message and hint without a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from siyu.core.i18n import N_, gettext


class SiyuError(Exception):
    """Base of every error siyu raises on purpose."""

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = N_("Internal error")
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        **context: Any,
    ) -> None:
        self.message_id = message
        self.hint_id = hint
        self.errors = errors or []
        self.context: dict[str, Any] = context
        super().__init__(self.render())

    def render(self, locale: str | None = None) -> str:
        """The message in ``locale`` (default: the current one), its context filled in."""
        return _format(gettext(self.message_id, locale), self.context)

    def render_hint(self, locale: str | None = None) -> str | None:
        if self.hint_id is None:
            return None
        return _format(gettext(self.hint_id, locale), self.context)

    def render_title(self, locale: str | None = None) -> str:
        return gettext(self.title, locale)

    def response_headers(self) -> dict[str, str]:
        """HTTP headers the API adds to this error's answer (e.g. ``WWW-Authenticate``)."""
        return {}


def _format(template: str, context: Mapping[str, Any]) -> str:
    try:
        return template.format(**context)
    except (KeyError, IndexError, ValueError):
        return template


class ConfigError(SiyuError):
    """A setting has a value siyu cannot use; ``setting`` names it."""

    code = "config_invalid"
    status = 500
    title = N_("Configuration error")


class HomeNotWritableError(ConfigError):
    code = "home_not_writable"
    title = N_("Data directory not writable")


class StoreError(SiyuError):
    """The operational database cannot be used."""

    code = "store_error"
    status = 503
    title = N_("Operational database unavailable")
    retryable = True


class MigrationRequiredError(StoreError):
    code = "migration_required"
    title = N_("Database schema out of date")
    retryable = False


class EventStoreError(SiyuError):
    """The event store cannot be used."""

    code = "event_store_error"
    status = 503
    title = N_("Event store unavailable")
    retryable = True


class EventStoreCorruptError(EventStoreError):
    code = "event_store_corrupt"
    title = N_("Event store damaged")
    retryable = False


class EventStoreLockedError(EventStoreError):
    code = "event_store_locked"
    title = N_("Event store in use")


class InvalidEventsError(SiyuError):
    """A batch of events does not fit the event schema; ``errors`` lists each problem."""

    code = "invalid_events"
    status = 422
    title = N_("Invalid events")


class NotFoundError(SiyuError):
    code = "not_found"
    status = 404
    title = N_("Not found")


class ConflictError(SiyuError):
    code = "conflict"
    status = 409
    title = N_("Conflict")


class AuthenticationError(SiyuError):
    code = "unauthenticated"
    status = 401
    title = N_("Authentication required")


class InvalidInputError(SiyuError):
    code = "invalid_input"
    status = 422
    title = N_("Invalid input")
