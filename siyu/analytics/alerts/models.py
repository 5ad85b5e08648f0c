"""Alert rules (which metric, which baseline, whom to tell) and the alerts they raised."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.analytics.alerts.detect import Direction, Method
from siyu.core.clock import utcnow
from siyu.store.base import Base


class AlertRule(Base):
    __tablename__ = "alert_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(64), index=True)
    method: Mapped[str] = mapped_column(String(16), default=Method.weekday.value)
    threshold: Mapped[float] = mapped_column(default=0.15)
    sensitivity: Mapped[float] = mapped_column(default=3.0)
    direction: Mapped[str] = mapped_column(String(8), default=Direction.both.value)
    channel: Mapped[str | None] = mapped_column(String(32), default=None)
    targets: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Alert(Base):
    """One anomaly a rule found on one local day (never twice: unique per rule and day)."""

    __tablename__ = "alert"
    __table_args__ = (UniqueConstraint("rule_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(index=True)
    metric: Mapped[str] = mapped_column(String(64))
    day: Mapped[date]
    value: Mapped[float]
    expected: Mapped[float]
    change: Mapped[float | None] = mapped_column(default=None)
    direction: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    deliveries: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100), default=None)


TargetKind = Literal["webhook", "email", "wecom_robot"]


class Target(BaseModel):
    """Where an alert goes: a webhook URL, an email address, or a WeCom group robot key."""

    model_config = ConfigDict(extra="forbid")

    kind: TargetKind
    address: str = Field(min_length=1, max_length=500)

    @field_validator("address")
    @classmethod
    def _address_fits_kind(cls, value: str, info: Any) -> str:
        kind = info.data.get("kind")
        value = value.strip()
        if kind == "webhook" and not value.startswith(("http://", "https://")):
            raise ValueError("a webhook address is an http(s) URL")
        if kind == "email" and ("@" not in value or any(c.isspace() for c in value)):
            raise ValueError("not an email address")
        if kind == "wecom_robot" and not value.replace("-", "").isalnum():
            raise ValueError("a WeCom robot key is letters, digits and dashes")
        return value


class RuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    metric: str = Field(min_length=1, max_length=64)
    method: Method = Method.weekday
    threshold: float = Field(default=0.15, gt=0, le=10)
    sensitivity: float = Field(default=3.0, ge=0, le=20)
    direction: Direction = Direction.both
    channel: str | None = Field(default=None, max_length=32)
    targets: list[Target] = Field(default_factory=list, max_length=20)
    enabled: bool = True


class RuleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    method: Method | None = None
    threshold: float | None = Field(default=None, gt=0, le=10)
    sensitivity: float | None = Field(default=None, ge=0, le=20)
    direction: Direction | None = None
    targets: list[Target] | None = Field(default=None, max_length=20)
    enabled: bool | None = None


class RuleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    metric: str
    method: Method
    threshold: float
    sensitivity: float
    direction: Direction
    channel: str | None
    targets: list[Target]
    enabled: bool
    created_at: datetime
    updated_at: datetime


class AlertRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    rule_id: int
    metric: str
    day: date
    value: float
    expected: float
    change: float | None
    direction: str
    status: str
    deliveries: list[dict[str, Any]]
    message: str
    created_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
