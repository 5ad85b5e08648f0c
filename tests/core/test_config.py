"""Settings: defaults, SIYU_* variables, clear errors naming the setting, the secret key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from siyu.core.config import (
    MIN_SECRET_LENGTH,
    SECRET_KEY_FILE,
    Settings,
    ensure_home,
    get_settings,
    load_settings,
    secret_key,
)
from siyu.core.errors import ConfigError, HomeNotWritableError
from siyu.core.i18n import use_locale


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    settings = load_settings()

    home = (tmp_path / ".siyu").resolve()
    assert settings.home_dir == home
    assert settings.home_dir.is_absolute()
    assert settings.resolved_database_url == f"sqlite:///{home / 'siyu.db'}"
    assert settings.resolved_events_url == f"duckdb:///{home / 'events.duckdb'}"
    assert settings.timezone == "Asia/Shanghai"
    assert settings.tz.key == "Asia/Shanghai"
    assert settings.lang == "zh-CN"
    assert settings.log_level == "INFO"
    assert settings.secret_key is None


def test_environment_variables_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIYU_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("SIYU_DATABASE_URL", "postgresql://ops@db.example:5432/siyu")
    monkeypatch.setenv("SIYU_EVENTS_URL", "duckdb:///:memory:")
    monkeypatch.setenv("SIYU_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("SIYU_LANG", "en_US")
    monkeypatch.setenv("SIYU_LOG_LEVEL", "debug")
    monkeypatch.setenv("SIYU_SECRET_KEY", "k" * MIN_SECRET_LENGTH)

    settings = get_settings()

    assert settings.home_dir == tmp_path / "data"
    assert settings.resolved_database_url == "postgresql://ops@db.example:5432/siyu"
    assert settings.resolved_events_url == "duckdb:///:memory:"
    assert settings.timezone == "Europe/Berlin"
    assert settings.lang == "en"
    assert settings.log_level == "DEBUG"
    assert secret_key(settings) == "k" * MIN_SECRET_LENGTH
    assert get_settings() is settings  # read once per process


@pytest.mark.parametrize(
    ("variable", "value", "reason_en"),
    [
        ("SIYU_LANG", "fr", "unsupported language 'fr'"),
        ("SIYU_TIMEZONE", "Mars/Base", "unknown time zone 'Mars/Base'"),
        ("SIYU_DATABASE_URL", "mysql://x", "unsupported database 'mysql'"),
        ("SIYU_EVENTS_URL", "foo://", "unsupported event store 'foo://'"),
        ("SIYU_SECRET_KEY", "too-short", f"at least {MIN_SECRET_LENGTH} characters"),
        ("SIYU_LOG_LEVEL", "LOUD", "DEBUG"),
    ],
)
def test_bad_values_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, reason_en: str
) -> None:
    monkeypatch.setenv(variable, value)

    with use_locale("en"), pytest.raises(ConfigError) as caught:
        load_settings()

    error = caught.value
    assert error.context["setting"] == variable
    assert error.errors[0]["setting"] == variable
    assert variable in error.render("en")
    assert reason_en in error.render("en")
    assert error.render_hint("en")
    assert error.code == "config_invalid"


def test_bad_value_reason_is_translated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIYU_TIMEZONE", "Mars/Base")

    with use_locale("zh-CN"), pytest.raises(ConfigError) as caught:
        load_settings()

    message = caught.value.render("zh-CN")
    assert message.startswith("配置项 SIYU_TIMEZONE 无效")
    assert "未知时区 'Mars/Base'" in message


def test_every_bad_setting_is_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIYU_LANG", "fr")
    monkeypatch.setenv("SIYU_TIMEZONE", "Mars/Base")

    with pytest.raises(ConfigError) as caught:
        load_settings()

    assert {problem["setting"] for problem in caught.value.errors} == {"SIYU_LANG", "SIYU_TIMEZONE"}


def test_secret_key_is_generated_private_and_stable(settings: Settings) -> None:
    first = secret_key(settings)
    path = settings.home_dir / SECRET_KEY_FILE

    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= MIN_SECRET_LENGTH
    assert secret_key(settings) == first
    assert secret_key(load_settings(home=settings.home)) == first


def test_two_homes_get_different_keys(tmp_path: Path) -> None:
    one = secret_key(load_settings(home=tmp_path / "one"))
    two = secret_key(load_settings(home=tmp_path / "two"))
    assert one != two


def test_a_truncated_key_file_is_refused(settings: Settings) -> None:
    (settings.home_dir / SECRET_KEY_FILE).write_text("short\n")

    with pytest.raises(ConfigError) as caught:
        secret_key(settings)

    assert caught.value.context["setting"] == "SIYU_SECRET_KEY"
    assert SECRET_KEY_FILE in caught.value.render("en")


def test_unwritable_home_names_siyu_home(tmp_path: Path) -> None:
    # Tests may run as root, which ignores permission bits; a path below a regular file
    # cannot be created by anyone.
    blocker = tmp_path / "afile"
    blocker.write_text("I am a file")
    settings = load_settings(home=blocker / "sub")

    with pytest.raises(HomeNotWritableError) as caught:
        ensure_home(settings)
    with pytest.raises(HomeNotWritableError):
        secret_key(settings)

    error = caught.value
    assert error.context["setting"] == "SIYU_HOME"
    assert "SIYU_HOME" in error.render("en")
    assert str(blocker / "sub") in error.render("en")
    assert isinstance(error, ConfigError)


def test_public_view_hides_secrets(tmp_path: Path) -> None:
    secret = "s" * 40
    settings = load_settings(
        home=tmp_path,
        secret_key=secret,
        database_url="postgresql://ops:pa55word@db.example:5432/siyu",
    )

    view = settings.public_view()

    assert secret not in str(view)
    assert "pa55word" not in str(view)
    assert view["SIYU_DATABASE_URL"] == "postgresql://ops:******@db.example:5432/siyu"
    assert view["SIYU_SECRET_KEY"].startswith("******")
    assert view["SIYU_HOME"] == str(tmp_path.resolve())
    assert set(view) == {
        "SIYU_HOME",
        "SIYU_DATABASE_URL",
        "SIYU_EVENTS_URL",
        "SIYU_SECRET_KEY",
        "SIYU_TIMEZONE",
        "SIYU_LANG",
        "SIYU_SMTP_URL",
        "SIYU_REPORT_SUBSCRIBERS",
        "SIYU_MAIL_FROM",
        "SIYU_WECOM_ROBOT_URL",
        "SIYU_LOG_LEVEL",
    }


def test_public_view_keeps_a_url_without_password(settings: Settings) -> None:
    view = settings.public_view()
    assert view["SIYU_DATABASE_URL"] == settings.resolved_database_url
    assert str(settings.home_dir / SECRET_KEY_FILE) in view["SIYU_SECRET_KEY"]


def test_settings_are_frozen(settings: Settings) -> None:
    with pytest.raises(ValueError, match="frozen"):
        settings.lang = "en"  # type: ignore[misc]


def test_processes_starting_together_agree_on_one_key(settings: Settings) -> None:
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=4) as pool:
        keys = list(pool.map(_key_in_fresh_process, [str(settings.home_dir)] * 8))

    assert len(set(keys)) == 1
    assert keys[0] == secret_key(settings)
    assert [path.name for path in settings.home_dir.iterdir()] == [SECRET_KEY_FILE]


def _key_in_fresh_process(home: str) -> str:
    return secret_key(load_settings(home=home))
