"""Sources (who may send events, with which write key) and dead letters (what was refused).

The tables, and the pydantic schemas that cross the API and the CLI.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.clock import utcnow
from siyu.events.schema import IDENTIFIER_TYPES
from siyu.store.base import Base

# Identifier types a Segment ``userId`` may be (besides ``custom:<name>``).
USER_ID_TYPES = IDENTIFIER_TYPES
CUSTOM_PREFIX = "custom:"


class SourceStatus(StrEnum):
    active = "active"
    revoked = "revoked"


class Source(Base):
    """A sender of events (a website, an app, a back end). Only a hash of its key is kept."""

    __tablename__ = "source"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16), default="http")
    write_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(8))
    user_id_type: Mapped[str] = mapped_column(String(64), default="member_no")
    status: Mapped[str] = mapped_column(String(16), default=SourceStatus.active.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    rotated_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class DeadLetter(Base):
    """A message the tracking API refused, kept verbatim (up to 64 KB) with why."""

    __tablename__ = "dead_letter"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    source_id: Mapped[str | None] = mapped_column(
        ForeignKey("source.id", ondelete="SET NULL"), index=True
    )
    received_at: Mapped[datetime] = mapped_column(index=True)
    payload: Mapped[str] = mapped_column(Text)
    payload_truncated: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str] = mapped_column(Text)
    field: Mapped[str | None] = mapped_column(String(200), default=None)
    replayed_at: Mapped[datetime | None] = mapped_column(default=None)


# -- schemas ---------------------------------------------------------------------------------


class SourceCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    kind: str = Field(default="http", pattern=r"^[a-z][a-z0-9_]{0,15}$")
    user_id_type: str = Field(default="member_no", max_length=64)


class SourceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    kind: str
    key_prefix: str
    user_id_type: str
    status: SourceStatus
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None


class SourceWithKey(BaseModel):
    """A source and its write key, shown once: when created or rotated."""

    source: SourceRead
    write_key: str


class DeadLetterRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    source_id: str | None
    received_at: datetime
    payload: str
    payload_truncated: bool
    reason: str
    field: str | None
    replayed_at: datetime | None


class Rejection(BaseModel):
    """Why one message of a request was refused (it went to the dead letters)."""

    index: int = Field(description="Position of the message in the batch (0 for single calls).")
    field: str = Field(description="The offending field, dotted (`properties.revenue`).")
    reason: str


class IngestResult(BaseModel):
    """The answer to every tracking call: sent only once the accepted events are stored."""

    success: bool = Field(
        default=True, description="Always true in a 200 answer (Segment compatibility)."
    )
    accepted: int = Field(description="Messages stored now.")
    duplicates: int = Field(description="Messages whose messageId was already stored (skipped).")
    rejected: list[Rejection] = Field(default_factory=list)


class ReplayResult(BaseModel):
    replayed: int
    duplicates: int
    still_rejected: int


# -- the Segment message, for the OpenAPI document (the body is parsed by hand) -------------


class Campaign(BaseModel):
    model_config = ConfigDict(extra="allow")

    source: str | None = None
    medium: str | None = None
    name: str | None = None
    term: str | None = None
    content: str | None = None


class MessageContext(BaseModel):
    model_config = ConfigDict(extra="allow")

    channel: str | None = Field(
        default=None, description="wecom, miniprogram, app, web, sms, email, store or crm."
    )
    ip: str | None = None
    userAgent: str | None = None  # noqa: N815 (Segment's spelling)
    campaign: Campaign | None = None
    page: dict[str, Any] | None = None
    wecom: dict[str, Any] | None = None
    miniprogram: dict[str, Any] | None = None
    externalIds: list[dict[str, Any]] | None = None  # noqa: N815
    identifiers: dict[str, str] | None = Field(
        default=None, description="siyu extension: identifiers by type (phone, openid, …)."
    )


class Message(BaseModel):
    """One Segment/RudderStack message (track, identify, alias, page, screen)."""

    model_config = ConfigDict(extra="allow")

    type: str | None = Field(default=None, description="track, identify, alias, page or screen.")
    messageId: str | None = None  # noqa: N815
    userId: str | None = None  # noqa: N815
    anonymousId: str | None = None  # noqa: N815
    previousId: str | None = None  # noqa: N815
    event: str | None = None
    name: str | None = None
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    context: MessageContext | None = None
    timestamp: str | None = None
    originalTimestamp: str | None = None  # noqa: N815
    sentAt: str | None = None  # noqa: N815
    writeKey: str | None = Field(  # noqa: N815
        default=None,
        description="The write key, for single calls without an Authorization header.",
    )


class Batch(BaseModel):
    batch: list[Message] = Field(max_length=1000)
    sentAt: str | None = None  # noqa: N815
    context: MessageContext | None = None
    writeKey: str | None = Field(  # noqa: N815
        default=None,
        description="The write key, read only when the request has no Authorization header "
        "(navigator.sendBeacon cannot set one).",
    )
