"""Events siyu records about a person itself (tier_changed, lifecycle_changed, segment_entered…).

They name the person directly (``user_id = "oneid:<person_id>"``), come from channel
``system``, and have event ids derived from what happened, so recording them twice (a retry,
a re-run) stores them once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from siyu.events.base import EventStore, conform
from siyu.events.schema import ONEID_PREFIX


def record(
    events: EventStore,
    *,
    name: str,
    source: str,
    at: datetime,
    person_ids: Sequence[str],
    properties: Sequence[dict[str, Any]],
    id_parts: Sequence[str],
) -> int:
    """Append one event per person; ``id_parts`` make each event id unique and stable."""
    if not person_ids:
        return 0
    table = pa.table(
        {
            "event_id": pa.array([f"{name}:{part}" for part in id_parts], pa.string()),
            "name": pa.array([name] * len(person_ids), pa.string()),
            "ts": pa.array([at] * len(person_ids), pa.timestamp("us", tz="UTC")),
            "received_at": pa.array([at] * len(person_ids), pa.timestamp("us", tz="UTC")),
            "user_id": pa.array([ONEID_PREFIX + p for p in person_ids], pa.string()),
            "channel": pa.array(["system"] * len(person_ids), pa.string()),
            "source": pa.array([source] * len(person_ids), pa.string()),
            "properties": pa.array(
                [json.dumps(p, ensure_ascii=False, default=str) for p in properties], pa.string()
            ),
        }
    )
    return events.append(conform(table)).inserted
