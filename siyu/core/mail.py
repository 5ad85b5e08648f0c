"""Sending mail through the brand's SMTP server (``SIYU_SMTP_URL``): alerts and reports."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from siyu.core.config import Settings
from siyu.core.errors import ConfigError, SiyuError
from siyu.core.i18n import N_

TIMEOUT_SECONDS = 20


class MailError(SiyuError):
    """The mail server refused or could not be reached; ``reason`` says why."""

    code = "mail_failed"
    status = 502
    title = N_("Mail not sent")
    retryable = True


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str = "application/octet-stream"


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    user: str | None
    password: str | None
    tls: bool  # implicit TLS (smtps://)
    starttls: bool

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
            raise ConfigError(
                N_("SIYU_SMTP_URL must look like smtp://user:password@host:port"),
                setting="SIYU_SMTP_URL",
            )
        tls = parts.scheme == "smtps"
        query = parse_qs(parts.query)
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if tls else 25),
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
            starttls=query.get("starttls", ["0"])[0] in {"1", "true", "yes"},
        )


def mail_enabled(settings: Settings) -> bool:
    return bool(settings.smtp_url)


def send_mail(
    settings: Settings,
    to: Sequence[str],
    subject: str,
    text: str,
    *,
    html: str | None = None,
    attachments: Sequence[Attachment] = (),
) -> None:
    """Send one message to ``to``; raise :class:`MailError` when the server does not take it."""
    if not settings.smtp_url:
        raise ConfigError(N_("Email is not configured: set SIYU_SMTP_URL"), setting="SIYU_SMTP_URL")
    server = SmtpServer.from_url(settings.smtp_url)
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for item in attachments:
        main, _, sub = item.mime_type.partition("/")
        message.add_attachment(item.content, maintype=main, subtype=sub, filename=item.filename)
    try:
        if server.tls:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                server.host, server.port, timeout=TIMEOUT_SECONDS,
                context=ssl.create_default_context(),
            )  # fmt: skip
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT_SECONDS)
        with client:
            if server.starttls:
                client.starttls(context=ssl.create_default_context())
            if server.user:
                client.login(server.user, server.password or "")
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(
            N_("The mail server {host}:{port} did not take the message: {reason}"),
            host=server.host,
            port=server.port,
            reason=str(exc) or type(exc).__name__,
        ) from None
