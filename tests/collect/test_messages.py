"""Message → row: Segment's clock-skew rule and the time bounds, unit by unit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from siyu.collect.messages import Envelope, MessageError, to_row

RECEIVED = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def envelope(sent_at: datetime | None = None) -> Envelope:
    return Envelope(user_id_type="openid", source_id="src_1", received_at=RECEIVED, sent_at=sent_at)


def message(**fields: object) -> dict[str, object]:
    return {"type": "track", "messageId": "m", "userId": "oABCDEF123", "event": "e", **fields}


@pytest.mark.parametrize(
    ("fields", "batch_sent_at", "expected"),
    [
        # No client time: the time siyu received it.
        ({}, None, RECEIVED),
        # A timestamp without sentAt is taken as sent.
        ({"timestamp": "2025-06-01T11:00:00Z"}, None, datetime(2025, 6, 1, 11, 0, tzinfo=UTC)),
        # The client's clock is 10 minutes fast: sentAt 12:10 arrives at 12:00.
        (
            {"timestamp": "2025-06-01T12:05:00Z", "sentAt": "2025-06-01T12:10:00Z"},
            None,
            datetime(2025, 6, 1, 11, 55, tzinfo=UTC),
        ),
        # ... 2 hours slow, offsets honoured, batch-level sentAt used.
        (
            {"timestamp": "2025-06-01T17:30:00+08:00"},
            datetime(2025, 6, 1, 10, 0, tzinfo=UTC),
            datetime(2025, 6, 1, 11, 30, tzinfo=UTC),
        ),
        # originalTimestamp stands in for a missing timestamp; naive times are UTC.
        (
            {"originalTimestamp": "2025-06-01T11:59:00", "sentAt": "2025-06-01T11:59:30"},
            None,
            datetime(2025, 6, 1, 11, 59, 30, tzinfo=UTC),
        ),
    ],
)
def test_clock_skew_correction(
    fields: dict[str, object], batch_sent_at: datetime | None, expected: datetime
) -> None:
    row = to_row(message(**fields), envelope(batch_sent_at))
    assert row["ts"] == expected
    assert row["received_at"] == RECEIVED


def test_the_future_limit_applies_after_correction() -> None:
    almost = (RECEIVED + timedelta(hours=23)).isoformat()
    assert to_row(message(timestamp=almost), envelope())["ts"] == RECEIVED + timedelta(hours=23)
    # A client 3 days fast sends a time 2 days "ahead": corrected, it is yesterday.
    row = to_row(
        message(
            timestamp=(RECEIVED + timedelta(days=2)).isoformat(),
            sentAt=(RECEIVED + timedelta(days=3)).isoformat(),
        ),
        envelope(),
    )
    assert row["ts"] == RECEIVED - timedelta(days=1)
    with pytest.raises(MessageError) as caught:
        to_row(message(timestamp=(RECEIVED + timedelta(days=1, seconds=1)).isoformat()), envelope())
    assert caught.value.field == "timestamp"
    with pytest.raises(MessageError):
        to_row(message(timestamp="1999-12-31T23:59:59Z"), envelope())


def test_user_id_is_typed_by_the_source_and_checked() -> None:
    row = to_row(message(), envelope())
    assert row["user_id"] == "openid:oABCDEF123"
    with pytest.raises(MessageError) as caught:
        to_row(message(userId="x"), envelope())
    assert (caught.value.field, caught.value.reason) == ("userId", "is not a valid openid")


def test_amounts_are_exact_decimals_rounded_to_cents() -> None:
    for value, expected in ((19.99, "19.99"), ("0.1", "0.10"), (3, "3.00"), (2.675, "2.68")):
        row = to_row(message(properties={"revenue": value}), envelope())
        assert str(row["amount"]) == expected
