"""The catalogs cover the code: every marked string has a zh-CN translation with the same fields."""

from __future__ import annotations

import io
import string

import pytest
from babel.messages.catalog import Catalog

from siyu.core import i18n_tools
from siyu.core.i18n import LOCALE_DIR


@pytest.fixture(scope="module")
def extracted() -> Catalog:
    return i18n_tools.extract()


def _ids(message_id: str | tuple[str, ...]) -> tuple[str, ...]:
    return (message_id,) if isinstance(message_id, str) else tuple(message_id)


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_extraction_finds_the_marked_strings(extracted: Catalog) -> None:
    ids = {_ids(message.id)[0] for message in extracted if message.id}
    # One of each kind: N_ title, N_ message, gettext in the API, _() in an f-string in the CLI.
    assert "Configuration error" in ids
    assert "Setting {setting} is invalid: {reason}" in ids
    assert "Not ready" in ids
    assert "What to do" in ids
    assert len(ids) >= 50


def test_every_string_has_a_chinese_translation(extracted: Catalog) -> None:
    catalog = i18n_tools.read_catalog(i18n_tools.catalog_path("zh_CN"), "zh_CN")
    missing = []
    for message in extracted:
        if not message.id:
            continue
        translated = catalog.get(message.id, message.context)
        strings = () if translated is None else _ids(translated.string)
        if translated is None or translated.fuzzy or not strings or not all(strings):
            missing.append(_ids(message.id)[0])
    assert missing == [], "untranslated in zh_CN; run `make i18n` and translate: " + repr(missing)


@pytest.mark.parametrize("locale", i18n_tools.CATALOG_LOCALES)
def test_translations_keep_the_placeholders(locale: str) -> None:
    catalog = i18n_tools.read_catalog(i18n_tools.catalog_path(locale), locale)
    mismatched = []
    for message in catalog:
        if not message.id:
            continue
        expected = set().union(*(_fields(text) for text in _ids(message.id)))
        for text in _ids(message.string):
            if text and _fields(text) != expected:
                mismatched.append((_ids(message.id)[0], text))
    assert mismatched == []


def test_translations_are_natural_chinese() -> None:
    catalog = i18n_tools.read_catalog(i18n_tools.catalog_path("zh_CN"), "zh_CN")
    assert catalog.get("Configuration error").string == "配置错误"
    has_chinese = [
        message.id
        for message in catalog
        if message.id
        and not any("\u4e00" <= char <= "\u9fff" for char in "".join(_ids(message.string)))
    ]
    assert has_chinese == []


def test_template_file_matches_the_code(extracted: Catalog) -> None:
    on_disk = i18n_tools.read_catalog(LOCALE_DIR / "messages.pot")
    assert {message.id for message in on_disk if message.id} == {
        message.id for message in extracted if message.id
    }


def test_the_ast_extractor_reads_f_strings_and_skips_non_literals() -> None:
    source = b"""
name = "x"
print(f"{_('Inside an f-string')}: {name}")
# Translators: shown on the overview page
title = N_("Overview")
gettext(name)
ngettext("{n} tag", "{n} tags", 2)
"""
    found = list(
        i18n_tools.extract_python(
            io.BytesIO(source), {"_", "N_", "gettext", "ngettext"}, ["Translators:"], {}
        )
    )

    assert [(line, name, messages) for line, name, messages, _ in found] == [
        (3, "_", ("Inside an f-string",)),
        (5, "N_", ("Overview",)),
        (6, "gettext", (None,)),
        (7, "ngettext", ("{n} tag", "{n} tags", None)),
    ]
    assert found[1][3] == ["Translators: shown on the overview page"]
