"""Language negotiation and translation through the Babel catalogs."""

from __future__ import annotations

import pytest

from siyu.core import i18n
from siyu.core.errors import ConfigError, StoreError
from siyu.core.i18n import (
    N_,
    current_locale,
    gettext,
    negotiate,
    ngettext,
    normalize_locale,
    set_default_locale,
    use_locale,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "zh-CN"),
        ("", "zh-CN"),
        ("en", "en"),
        ("en-US,en;q=0.9", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("en;q=0.5, zh-TW;q=0.9", "zh-CN"),
        ("zh;q=0.4, en;q=0.6", "en"),
        ("fr-FR, de;q=0.9", "zh-CN"),
        ("fr-FR, en;q=0.1", "en"),
        ("en;q=0, zh;q=0.3", "zh-CN"),
        ("en;q=0", "zh-CN"),
        ("en;q=abc, zh-Hans-CN", "zh-CN"),
        ("EN-gb ; q=0.7", "en"),
        ("*", "zh-CN"),
    ],
)
def test_negotiate_honours_q_values(header: str | None, expected: str) -> None:
    assert negotiate(header) == expected


def test_negotiate_keeps_header_order_on_equal_quality() -> None:
    assert negotiate("en, zh-CN") == "en"
    assert negotiate("zh-CN, en") == "zh-CN"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("zh", "zh-CN"),
        ("zh_CN", "zh-CN"),
        ("zh-Hans-CN", "zh-CN"),
        ("ZH-cn", "zh-CN"),
        ("en", "en"),
        ("en-US", "en"),
        ("en_GB.UTF-8", "en"),
        (" en ", "en"),
        ("fr", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_locale(value: str | None, expected: str | None) -> None:
    assert normalize_locale(value) == expected


def test_gettext_in_both_languages() -> None:
    assert gettext("Configuration error", "zh-CN") == "配置错误"
    assert gettext("Configuration error", "en") == "Configuration error"
    assert gettext("Not ready", "zh-CN") == "服务未就绪"


def test_unknown_text_falls_back_to_the_source() -> None:
    assert gettext("No catalog has this sentence", "zh-CN") == "No catalog has this sentence"


def test_ngettext() -> None:
    singular, plural = (
        "The request has {count} invalid field",
        "The request has {count} invalid fields",
    )
    assert ngettext(singular, plural, 1, "en") == singular
    assert ngettext(singular, plural, 2, "en") == plural
    assert ngettext(singular, plural, 2, "zh-CN") == "请求中有 {count} 个字段无效"


def test_current_locale_follows_use_locale_and_the_default() -> None:
    assert current_locale() == "zh-CN"
    with use_locale("en") as chosen:
        assert chosen == "en"
        assert current_locale() == "en"
        assert gettext("Configuration error") == "Configuration error"
        with use_locale("zh"):
            assert gettext("Configuration error") == "配置错误"
        assert current_locale() == "en"
    assert current_locale() == "zh-CN"

    set_default_locale("en")
    assert current_locale() == "en"
    set_default_locale("klingon")
    assert current_locale() == i18n.DEFAULT_LOCALE


def test_gettext_noop_marks_without_translating() -> None:
    assert N_("Configuration error") == "Configuration error"


def test_errors_render_in_the_readers_language() -> None:
    error = StoreError(
        N_("The operational database is at revision {current}, not {head}"),
        hint=N_("Run `siyu db upgrade`."),
        current="empty",
        head="0001",
    )

    assert error.render("en") == "The operational database is at revision empty, not 0001"
    assert error.render("zh-CN") == "业务数据库当前版本为 empty，最新版本为 0001"
    assert error.render_hint("zh-CN") == "请运行 `siyu db upgrade`。"
    assert error.render_title("en") == "Operational database unavailable"
    assert error.render_title("zh-CN") == "业务数据库不可用"
    assert ConfigError.title == "Configuration error"


def test_missing_context_leaves_the_template_readable() -> None:
    error = StoreError(N_("The operational database is at revision {current}, not {head}"))
    assert error.render("en") == "The operational database is at revision {current}, not {head}"
