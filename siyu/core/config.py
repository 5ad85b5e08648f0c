"""Settings, read from ``SIYU_*`` environment variables when a command or the app starts.

Nothing reads the environment at import time: call :func:`get_settings` (cached) at a
boundary, or build :class:`Settings` directly in tests.
"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from siyu.core.errors import ConfigError, HomeNotWritableError
from siyu.core.files import create_private_file
from siyu.core.i18n import N_, SUPPORTED_LOCALES, gettext, normalize_locale

SECRET_KEY_FILE = "secret.key"  # noqa: S105 (a file name, not a secret)
MIN_SECRET_LENGTH = 32


class InvalidSettingValueError(ValueError):
    """Why a setting was refused, kept as a message id and its context so it is shown translated."""

    def __init__(self, message: str, **context: Any) -> None:
        self.message_id = message
        self.context = context
        super().__init__(message.format(**context))

    def render(self) -> str:
        return gettext(self.message_id).format(**self.context)


class Settings(BaseSettings):
    """Every setting siyu reads. Each field documents its environment variable."""

    model_config = SettingsConfigDict(env_prefix="SIYU_", extra="ignore", frozen=True)

    home: Path = Field(
        default=Path(".siyu"),
        description="SIYU_HOME: data directory for the embedded stores, keys and reports.",
    )
    database_url: str | None = Field(
        default=None,
        description="SIYU_DATABASE_URL: operational database (SQLAlchemy URL). "
        "Default: SQLite file siyu.db in SIYU_HOME. PostgreSQL: postgresql://user@host/db.",
    )
    events_url: str | None = Field(
        default=None,
        description="SIYU_EVENTS_URL: event store. Default: DuckDB file events.duckdb in SIYU_HOME "
        "(duckdb:///path/to/file.duckdb, or duckdb:///:memory:).",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="SIYU_SECRET_KEY: signs sessions and derives encryption keys. "
        "Generated into SIYU_HOME/secret.key (mode 0600) on first run if not given.",
    )
    timezone: str = Field(
        default="Asia/Shanghai",
        description="SIYU_TIMEZONE: the brand's calendar for days, weeks and quiet hours "
        "(IANA name).",
    )
    lang: str = Field(
        default="zh-CN",
        description="SIYU_LANG: language of the console, CLI and messages (zh-CN or en).",
    )
    scheduler_interval: int = Field(
        default=300,
        ge=0,
        le=86_400,
        description="SIYU_SCHEDULER_INTERVAL: seconds between the server's scheduled runs "
        "(tags by cadence, tiers, segments); 0 turns the scheduler off.",
    )
    smtp_url: str | None = Field(
        default=None,
        description="SIYU_SMTP_URL: mail server for alerts and reports, "
        "smtp://user:password@host:port (smtps:// for TLS, ?starttls=1 to upgrade). "
        "Unset: email delivery is off.",
    )
    report_subscribers: str = Field(
        default="",
        description="SIYU_REPORT_SUBSCRIBERS: comma-separated email addresses that receive the "
        "weekly report (built every Monday after 06:00 local by the server; needs "
        "SIYU_SMTP_URL). Empty: the report is built but not sent.",
    )
    mail_from: str = Field(
        default="siyu@localhost",
        description="SIYU_MAIL_FROM: sender address of the mail siyu sends.",
    )
    wecom_robot_url: str = Field(
        default="https://qyapi.weixin.qq.com/cgi-bin/webhook/send",
        description="SIYU_WECOM_ROBOT_URL: WeCom group robot endpoint (the robot key is added "
        "as ?key=…); change it only to go through a proxy.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="SIYU_LOG_LEVEL: DEBUG, INFO, WARNING or ERROR."
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("report_subscribers")
    @classmethod
    def _email_list(cls, value: str) -> str:
        addresses = [a.strip() for a in value.split(",") if a.strip()]
        wrong = [a for a in addresses if "@" not in a or " " in a]
        if wrong:
            raise InvalidSettingValueError(
                N_("not an email address: {value!r}; separate addresses with commas"),
                value=wrong[0],
            )
        return ",".join(addresses)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidSettingValueError(
                N_("unknown time zone {value!r}; use an IANA name such as Asia/Shanghai"),
                value=value,
            ) from exc
        return value

    @field_validator("lang")
    @classmethod
    def _supported_lang(cls, value: str) -> str:
        locale = normalize_locale(value)
        if locale is None:
            raise InvalidSettingValueError(
                N_("unsupported language {value!r}; use one of {choices}"),
                value=value,
                choices=", ".join(SUPPORTED_LOCALES),
            )
        return locale

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = value.split(":", 1)[0].split("+", 1)[0]
        if scheme not in {"sqlite", "postgresql", "postgres"}:
            raise InvalidSettingValueError(
                N_("unsupported database {scheme!r}; use sqlite:///FILE or postgresql://…"),
                scheme=scheme,
            )
        return value

    @field_validator("events_url")
    @classmethod
    def _known_event_store(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith("duckdb://"):
            raise InvalidSettingValueError(
                N_("unsupported event store {url!r}; use duckdb:///FILE or duckdb:///:memory:"),
                url=value,
            )
        return value

    @field_validator("secret_key")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise InvalidSettingValueError(
                N_("must be at least {length} characters long"), length=MIN_SECRET_LENGTH
            )
        return value

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home_dir / 'siyu.db'}"

    @property
    def resolved_events_url(self) -> str:
        return self.events_url or f"duckdb:///{self.home_dir / 'events.duckdb'}"

    @property
    def report_subscriber_list(self) -> list[str]:
        return [a for a in self.report_subscribers.split(",") if a]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def public_view(self) -> dict[str, Any]:
        """The effective settings with secrets hidden, for ``siyu config show``."""
        secret_source = (
            "SIYU_SECRET_KEY" if self.secret_key else str(self.home_dir / SECRET_KEY_FILE)
        )
        return {
            "SIYU_HOME": str(self.home_dir),
            "SIYU_DATABASE_URL": hide_password(self.resolved_database_url),
            "SIYU_EVENTS_URL": self.resolved_events_url,
            "SIYU_SECRET_KEY": f"****** ({secret_source})",
            "SIYU_TIMEZONE": self.timezone,
            "SIYU_LANG": self.lang,
            "SIYU_SMTP_URL": hide_password(self.smtp_url) if self.smtp_url else "",
            "SIYU_REPORT_SUBSCRIBERS": self.report_subscribers,
            "SIYU_MAIL_FROM": self.mail_from,
            "SIYU_WECOM_ROBOT_URL": self.wecom_robot_url,
            "SIYU_LOG_LEVEL": self.log_level,
        }


def hide_password(url: str) -> str:
    """``url`` with its password, if any, replaced by ``******``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user, has_password, _ = credentials.partition(":")
    return f"{scheme}://{user}:******@{host}" if has_password else url


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning a bad value into a :class:`ConfigError` naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            cause = error.get("ctx", {}).get("error")
            reason = (
                cause.render()
                if isinstance(cause, InvalidSettingValueError)
                else str(cause or error["msg"])
            )
            problems.append({"setting": f"SIYU_{field.upper()}", "reason": reason})
        first = problems[0]
        raise ConfigError(
            N_("Setting {setting} is invalid: {reason}"),
            hint=N_("Fix or unset the environment variable, then run the command again."),
            errors=problems,
            setting=first["setting"],
            reason=first["reason"],
        ) from None


@cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return load_settings()


def ensure_home(settings: Settings) -> Path:
    """Create SIYU_HOME if needed and prove it is writable."""
    home = settings.home_dir
    try:
        home.mkdir(parents=True, exist_ok=True)
        # A probe of its own (processes may start together), removed when closed.
        with tempfile.TemporaryFile(dir=home, prefix=".write-probe-") as probe:
            probe.write(b"ok")
    except OSError as exc:
        raise HomeNotWritableError(
            N_("SIYU_HOME {path} is not writable ({reason})"),
            hint=N_("Point SIYU_HOME at a directory you can write to, or fix its permissions."),
            setting="SIYU_HOME",
            path=str(home),
            reason=exc.strerror or str(exc),
        ) from None
    return home


def secret_key(settings: Settings) -> str:
    """The secret key: SIYU_SECRET_KEY, else SIYU_HOME/secret.key, generated (0600) if missing."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    path = ensure_home(settings) / SECRET_KEY_FILE
    if not path.exists():
        from siyu.core.ids import new_token

        create_private_file(path, new_token(48))
    key = path.read_text().strip()
    if len(key) < MIN_SECRET_LENGTH:
        raise ConfigError(
            N_("Secret key file {path} is too short"),
            hint=N_("Delete it to have a new one generated, or set SIYU_SECRET_KEY."),
            setting="SIYU_SECRET_KEY",
            path=str(path),
        )
    return key
