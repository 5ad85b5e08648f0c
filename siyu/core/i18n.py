"""Translation of user-facing text through Babel catalogs (zh-CN default, en).

Source strings are English and live in the code; ``siyu/locale/<lang>/LC_MESSAGES/messages.po``
holds the translations. Catalogs are compiled in memory on first use, so there is no build step
and no binary file in the repository. The current locale is a context variable: the API sets it
per request from ``Accept-Language``, the CLI from ``SIYU_LANG``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

SUPPORTED_LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"

_current: ContextVar[str | None] = ContextVar("siyu_locale", default=None)
_default = DEFAULT_LOCALE


def normalize_locale(value: str | None) -> str | None:
    """Map ``zh``, ``zh_CN``, ``zh-Hans-CN``, ``en-US`` … to a supported locale, or None."""
    if not value:
        return None
    tag = value.strip().replace("_", "-").lower()
    if tag.startswith("zh"):
        return "zh-CN"
    if tag.startswith("en"):
        return "en"
    return None


def negotiate(accept_language: str | None) -> str:
    """The best supported locale for an ``Accept-Language`` header (q-values honoured)."""
    if not accept_language:
        return _default
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        locale = normalize_locale(tag)
        if locale and quality > 0:
            ranked.append((-quality, position, locale))
    return sorted(ranked)[0][2] if ranked else _default


def set_default_locale(locale: str) -> None:
    """Set the process-wide fallback (from ``SIYU_LANG``)."""
    global _default
    _default = normalize_locale(locale) or DEFAULT_LOCALE


def current_locale() -> str:
    return _current.get() or _default


@contextmanager
def use_locale(locale: str | None) -> Iterator[str]:
    """Translate into ``locale`` inside the block."""
    chosen = normalize_locale(locale) or _default
    token = _current.set(chosen)
    try:
        yield chosen
    finally:
        _current.reset(token)


@cache
def translations(locale: str) -> NullTranslations:
    po_path = LOCALE_DIR / locale.replace("-", "_") / "LC_MESSAGES" / "messages.po"
    if not po_path.exists():
        return NullTranslations()
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=locale.replace("-", "_"))
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def gettext(message: str, locale: str | None = None) -> str:
    """``message`` in ``locale`` (default: the current one); the English source if untranslated."""
    return translations(locale or current_locale()).gettext(message)


def ngettext(singular: str, plural: str, n: int, locale: str | None = None) -> str:
    return translations(locale or current_locale()).ngettext(singular, plural, n)


def gettext_noop(message: str) -> str:
    """Mark ``message`` for extraction without translating it now.

    For text translated later, when it is shown: error messages, hints and titles are
    kept as message ids and rendered in the reader's locale.
    """
    return message


_ = gettext
N_ = gettext_noop
