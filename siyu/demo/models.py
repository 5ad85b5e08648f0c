"""A record of each demo data set generated into the stores."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.clock import utcnow
from siyu.store.base import Base


class DemoDataset(Base):
    __tablename__ = "demo_dataset"

    id: Mapped[int] = mapped_column(primary_key=True)
    brand: Mapped[str] = mapped_column(String(64))
    seed: Mapped[int] = mapped_column(BigInteger)
    people: Mapped[int]
    days: Mapped[int]
    end_date: Mapped[date]
    events: Mapped[int] = mapped_column(BigInteger)
    orders: Mapped[int] = mapped_column(BigInteger)
    seconds: Mapped[float]
    generated_at: Mapped[datetime] = mapped_column(default=utcnow)
