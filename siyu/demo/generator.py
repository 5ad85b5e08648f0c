"""The demo brand generator: deterministic, realistic, vectorised.

``generate(spec)`` gives the catalogue, the ground-truth people and an iterator of event
batches conforming to the event schema. The same spec gives the same bytes: every chunk of
people draws from its own seeded stream, and no wall-clock time enters the data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siyu.demo import contact, shopping
from siyu.demo import reference as ref
from siyu.demo.frames import KEY_TYPES, Fragment, IntArray, digits, join, take
from siyu.demo.people import People, make_people
from siyu.events.schema import EVENTS_SCHEMA

CHUNK_PEOPLE = 50_000
LIFECYCLE_STAGES = ("new", "active", "silent", "churned", "returned")
HISTORY_EVENTS = ("register", "identify", "wecom_add_contact", "group_join", "group_leave")


@dataclass(frozen=True)
class DemoSpec:
    people: int = 20_000
    days: int = 365
    seed: int = 42
    end_date: date = field(default_factory=lambda: date(2026, 11, 22))
    timezone: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        if self.people < 1:
            raise ValueError("people must be at least 1")
        if not 30 <= self.days <= 1095:
            raise ValueError("days must be between 30 and 1095")
        if self.seed < 0:
            raise ValueError("seed must be non-negative")

    @property
    def start_date(self) -> date:
        return self.end_date - timedelta(days=self.days - 1)

    @property
    def chunks(self) -> int:
        return -(-self.people // CHUNK_PEOPLE)


@dataclass
class _Chunk:
    people: People
    opened: dict[str, np.ndarray]


class DemoData:
    """The generated brand. Event batches are produced lazily, one chunk of people at a time."""

    def __init__(self, spec: DemoSpec) -> None:
        self.spec = spec
        self.calendar = shopping.Calendar(spec.start_date, spec.days)
        midnight = datetime.combine(spec.start_date, time(0), tzinfo=ZoneInfo(spec.timezone))
        self._start_us = int(midnight.astimezone(UTC).timestamp()) * 1_000_000

    def _chunk(self, number: int) -> _Chunk:
        first = number * CHUNK_PEOPLE
        size = min(CHUNK_PEOPLE, self.spec.people - first)
        rng = np.random.default_rng([self.spec.seed, number, 0])
        people = make_people(rng, first, size, self.spec.days, self.spec.start_date.toordinal())
        opened = contact.account_days(rng, people, self.spec.days)
        # An account that never opened (the person lapsed first) carries no events.
        for account in ("mp", "wecom", "pos", "web", "email"):
            setattr(people, f"has_{account}", np.isfinite(opened[account]))
        people.phone_authorised &= people.has_mp
        return _Chunk(people, opened)

    @cached_property
    def products(self) -> pa.Table:
        return pa.table(
            {
                "sku": [p[0] for p in ref.PRODUCTS],
                "name": [p[1] for p in ref.PRODUCTS],
                "category": [p[2] for p in ref.PRODUCTS],
                "category_name": [ref.CATEGORY_NAMES_ZH[p[2]] for p in ref.PRODUCTS],
                "price": pa.array([p[3] for p in ref.PRODUCTS]).cast(pa.decimal128(18, 2)),
            }
        )

    @cached_property
    def people(self) -> pa.Table:
        """Ground truth, one row per real person (the answer key for identity resolution)."""
        return pa.concat_tables(self._truth(self._chunk(c)) for c in range(self.spec.chunks))

    def event_batches(self) -> Iterator[pa.Table]:
        """One Arrow table per chunk of people, sorted by time, conforming to the event schema."""
        for number in range(self.spec.chunks):
            chunk = self._chunk(number)
            rng = np.random.default_rng([self.spec.seed, number, 1])
            yield self._events(rng, number, chunk)

    # -- one chunk ---------------------------------------------------------------------

    def _events(self, rng: np.random.Generator, number: int, chunk: _Chunk) -> pa.Table:
        people, cal, opened = chunk.people, self.calendar, chunk.opened
        fragments = contact.identity_events(rng, people, cal, opened)
        removals, wecom_until = contact.contact_removals(rng, people, cal, opened)
        fragments.append(removals)
        fragments += shopping.sessions(rng, people, cal)
        order_fragments, _ = shopping.orders(rng, people, cal)
        fragments += order_fragments
        fragments += shopping.checkins(rng, people, cal)
        fragments += contact.messages(rng, people, cal, opened, wecom_until)
        return self._assemble(rng, number, people, fragments)

    def _assemble(
        self, rng: np.random.Generator, number: int, people: People, fragments: list[Fragment]
    ) -> pa.Table:
        fragments = [f for f in fragments if len(f)]
        sizes = np.array([len(f) for f in fragments])
        pid = np.concatenate([f.pid for f in fragments])
        t = np.concatenate([f.t for f in fragments])
        key = np.concatenate([np.broadcast_to(np.asarray(f.key), len(f)) for f in fragments])
        web = np.concatenate(
            [f.web if f.web is not None else np.zeros(len(f), bool) for f in fragments]
        )
        names = pa.array([f.name for f in fragments]).take(
            pa.array(np.repeat(np.arange(len(fragments)), sizes))
        )
        channel = pa.concat_arrays(
            [
                f.channel if isinstance(f.channel, pa.Array) else pa.array([f.channel] * len(f))
                for f in fragments
            ]
        )
        columns: dict[str, pa.Array] = {}
        extra = sorted({name for f in fragments for name in f.columns})
        for name in extra:
            kind = EVENTS_SCHEMA.field(name).type
            columns[name] = pa.concat_arrays(
                [
                    f.columns[name].cast(kind) if name in f.columns else pa.nulls(len(f), kind)
                    for f in fragments
                ]
            )

        ts_us = self._start_us + np.round(t * 86_400e6).astype(np.int64)
        order = np.argsort(ts_us, kind="stable")
        # Behaviour stays inside the window; only joining (and its evidence) reaches back.
        history = np.repeat([f.name in HISTORY_EVENTS for f in fragments], sizes)
        inside = (t < self.spec.days) & ((t >= 0) | history)
        keep = order[inside[order]]
        n = len(keep)
        pid, key, web, ts_us = pid[keep], key[keep], web[keep], ts_us[keep]
        index = pa.array(keep)
        channel = channel.take(index)

        n_people = len(people)
        typed_keys = [pa.nulls(n_people, pa.string())]
        for key_type, values in zip(
            KEY_TYPES[1:],
            (people.openid, people.wecom_id, people.member_no, people.phone, people.email),
            strict=True,
        ):
            typed_keys.append(join(f"{key_type}:", values))
        user_id = pa.concat_arrays(typed_keys).take(pa.array(key * n_people + pid))
        anonymous_id = pc.if_else(pa.array(web), take(people.device, pid), pa.nulls(n, pa.string()))

        lag_s = rng.exponential(1.5, n)
        channel_np = channel.to_numpy(zero_copy_only=False)
        lag_s += np.where(channel_np == "store", rng.uniform(0, 4 * 3600, n), 0)
        lag_s += np.where(channel_np == "crm", rng.uniform(0, 24 * 3600, n), 0)
        timestamp = EVENTS_SCHEMA.field("ts").type
        table = {
            "event_id": join(f"d{self.spec.seed}-{number:04d}-", digits(np.arange(n), 8)),
            "name": names.take(index),
            "ts": pa.array(ts_us, type=pa.int64()).cast(timestamp),
            "received_at": pa.array(ts_us + (lag_s * 1e6).astype(np.int64), type=pa.int64()).cast(
                timestamp
            ),
            "user_id": user_id,
            "anonymous_id": anonymous_id,
            "channel": channel,
            **{name: values.take(index) for name, values in columns.items()},
        }
        arrays = [table.get(f.name, pa.nulls(n, f.type)) for f in EVENTS_SCHEMA]
        return pa.Table.from_arrays(arrays, schema=EVENTS_SCHEMA)

    def _truth(self, chunk: _Chunk) -> pa.Table:
        people, opened, days = chunk.people, chunk.opened, self.spec.days

        def present(account: str, values: pa.Array) -> pa.Array:
            return pc.if_else(
                pa.array(np.isfinite(opened[account])), values, pa.nulls(len(people), pa.string())
            )

        reg_day = np.maximum(people.reg_day, -contact.HISTORY_DAYS)
        registered_us = self._start_us + np.round(reg_day * 86_400e6).astype(np.int64)
        return pa.table(
            {
                "person_key": join("P", digits(people.index, 8)),
                "name": people.name,
                "gender": take(pa.array(["female", "male"]), people.gender),
                "birthday": pa.array(people.birthday.astype("datetime64[D]")),
                "city": take(pa.array([c[0] for c in ref.CITIES]), people.city),
                "province": take(pa.array([c[1] for c in ref.CITIES]), people.city),
                "city_tier": take(pa.array([c[2] for c in ref.CITIES]), people.city),
                "registration_channel": take(
                    pa.array(list(ref.REGISTRATION_CHANNELS)), people.registration
                ),
                "registered_at": pa.array(registered_us, type=pa.int64()).cast(
                    EVENTS_SCHEMA.field("ts").type
                ),
                "customer_type": take(pa.array(list(ref.CUSTOMER_TYPES)), people.ctype),
                "main_category": take(pa.array(list(ref.CATEGORIES)), people.main_category),
                "lifecycle_stage": take(
                    pa.array(list(LIFECYCLE_STAGES)), designed_stage(people, days)
                ),
                "phone": people.phone,
                "member_no": present("pos", people.member_no),
                "openid": present("mp", people.openid),
                "unionid": pc.if_else(
                    pa.array(np.isfinite(opened["mp"]) | np.isfinite(opened["wecom"])),
                    people.unionid,
                    pa.nulls(len(people), pa.string()),
                ),
                "wecom_external_userid": present("wecom", people.wecom_id),
                "email": present("email", people.email),
                # Anyone who browses the web shop (everyone without the mini-program does).
                "device_id": pc.if_else(
                    pa.array(people.has_web | ~people.has_mp),
                    people.device,
                    pa.nulls(len(people), pa.string()),
                ),
                "kiosk_id": pc.if_else(
                    pa.array((people.kiosk >= 0) & np.isfinite(opened["pos"])),
                    join("KIOSK-ST", digits(np.maximum(people.kiosk, 0), 3)),
                    pa.nulls(len(people), pa.string()),
                ),
            }
        )


def designed_stage(people: People, days: int) -> IntArray:
    """The lifecycle stage each person was designed to be in at the end of the window:
    new (joined in the last 30 days), returned (came back in the last 30 days after 90+
    quiet days), active (in an active spell 30 days before the end), silent (whose spell
    ended 31-90 days before the end) or churned (longer ago)."""
    returned = np.isfinite(people.start2)
    last_active = np.where(returned, np.minimum(people.end2, days), np.minimum(people.end1, days))
    stage = np.select(
        [
            people.reg_day >= days - 30,
            returned & (people.start2 >= days - 30),
            last_active >= days - 30,
            last_active >= days - 90,
        ],
        [0, 4, 1, 2],
        default=3,
    )
    return stage.astype(np.int64)


def generate(spec: DemoSpec) -> DemoData:
    return DemoData(spec)
