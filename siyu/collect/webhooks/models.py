"""Webhook endpoints: the table (secrets sealed at rest) and the schemas that cross the API/CLI."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import CheckConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.clock import utcnow
from siyu.store.base import Base


class WebhookKind(StrEnum):
    wecom = "wecom"
    order = "order"


class WebhookStatus(StrEnum):
    active = "active"
    disabled = "disabled"


class WebhookEndpoint(Base):
    """One inbound webhook. ``token``, ``encoding_aes_key`` and ``secret`` hold ciphertext
    (see :mod:`siyu.collect.webhooks.secrets`), never the secret itself."""

    __tablename__ = "webhook_endpoint"
    __table_args__ = (CheckConstraint("kind IN ('wecom', 'order')", name="kind"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128), unique=True)
    corp_id: Mapped[str | None] = mapped_column(String(64), default=None)
    token: Mapped[str | None] = mapped_column(Text, default=None)
    encoding_aes_key: Mapped[str | None] = mapped_column(Text, default=None)
    secret: Mapped[str | None] = mapped_column(Text, default=None)
    field_mapping: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(16), default=WebhookStatus.active.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WecomEndpointCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    corp_id: str = Field(min_length=1, max_length=64)
    token: str = Field(min_length=1, max_length=128)
    encoding_aes_key: str = Field(min_length=43, max_length=43, pattern=r"^[A-Za-z0-9]{43}$")


class OrderEndpointCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    secret: str = Field(min_length=16, max_length=256)
    field_mapping: dict[str, Any]


class WebhookEndpointRead(BaseModel):
    """An endpoint as shown: secrets masked, the path to give the sender."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: WebhookKind
    name: str
    path: str
    corp_id: str | None
    token: str | None
    encoding_aes_key: str | None
    secret: str | None
    field_mapping: dict[str, Any] | None
    status: WebhookStatus
    created_at: datetime
