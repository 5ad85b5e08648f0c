"""Group commit: concurrent requests share one event-store append, and each is answered only
after that append has committed.

One asyncio task takes the rows requests hand in, waits a few milliseconds (or until enough
rows are pending) for others to arrive, appends them all in ONE ``EventStore.append`` call in
a worker thread, and then resolves every request's future with its own share of the result:
how many of its events were stored and how many were duplicates (of a stored event, or of an
earlier request in the same group).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import pyarrow as pa

from siyu.core.errors import EventStoreError, SiyuError
from siyu.core.i18n import N_
from siyu.core.logging import get_logger
from siyu.events import EventStore

log = get_logger("collect.writer")

MAX_DELAY_S = 0.005
MAX_ROWS = 50_000


@dataclass(frozen=True)
class Ack:
    """One request's share of a committed append."""

    inserted: int
    duplicates: int


@dataclass
class _Pending:
    table: pa.Table
    ids: list[str]
    future: asyncio.Future[Ack]


class GroupCommitWriter:
    def __init__(
        self, store: EventStore, *, max_delay_s: float = MAX_DELAY_S, max_rows: int = MAX_ROWS
    ) -> None:
        self.store = store
        self.max_delay_s = max_delay_s
        self.max_rows = max_rows
        self.appends = 0  # how many store appends (groups) so far, for tests and metrics
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="collect-writer")

    async def stop(self) -> None:
        """Commit what is pending, then end the task."""
        self._closed = True
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None

    async def submit(self, table: pa.Table, ids: list[str]) -> Ack:
        """Store ``table`` (rows with unique ``ids``); return once the append has committed."""
        if self._closed or self._task is None:
            raise EventStoreError(N_("The event writer is stopped"), path=self.store.url)
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(table, ids, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            group, rows = [first], first.table.num_rows
            deadline = loop.time() + self.max_delay_s
            while rows < self.max_rows:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    timeout = deadline - loop.time()
                    if timeout <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self._queue.get(), timeout)
                    except TimeoutError:
                        break
                if item is None:
                    stopping = True
                    break
                group.append(item)
                rows += item.table.num_rows
            await self._flush(group)

    async def _flush(self, group: list[_Pending]) -> None:
        try:
            outcomes = await anyio.to_thread.run_sync(self._append_group, group)
        except BaseException as exc:  # the thread died: nobody's events are known stored
            outcomes = [exc] * len(group)
            if not isinstance(exc, Exception):
                raise
        for pending, outcome in zip(group, outcomes, strict=True):
            if pending.future.done():
                continue  # the request went away; its events are stored all the same
            if isinstance(outcome, BaseException):
                pending.future.set_exception(outcome)
            else:
                pending.future.set_result(outcome)

    def _append_group(self, group: list[_Pending]) -> list[Ack | BaseException]:
        self.appends += 1
        table = group[0].table if len(group) == 1 else pa.concat_tables([p.table for p in group])
        try:
            result = self.store.append(table)
        except SiyuError as exc:
            if len(group) == 1:
                return [exc]
            log.warning("group append failed (%s); appending its requests one by one", exc)
            return [self._append_alone(pending) for pending in group]
        return _shares(group, result.skipped_ids)

    def _append_alone(self, pending: _Pending) -> Ack | BaseException:
        try:
            result = self.store.append(pending.table)
        except SiyuError as exc:
            return exc
        return _shares([pending], result.skipped_ids)[0]


def _shares(group: list[_Pending], skipped_ids: Any) -> list[Ack | BaseException]:
    """Each request's stored and duplicate counts. The store keeps the first row of an id, so
    within a group the earlier request owns it; ``skipped_ids`` were stored before."""
    skipped = set(skipped_ids.to_pylist()) if skipped_ids is not None else set()
    seen: set[str] = set()
    shares: list[Ack | BaseException] = []
    for pending in group:
        repeated = 0
        known = 0
        for event_id in pending.ids:
            if event_id in seen:
                repeated += 1
                continue
            seen.add(event_id)
            if event_id in skipped:
                known += 1
        duplicates = repeated + known
        shares.append(Ack(inserted=len(pending.ids) - duplicates, duplicates=duplicates))
    return shares


@asynccontextmanager
async def running_writer(store: EventStore | None) -> AsyncIterator[GroupCommitWriter | None]:
    """A started writer over ``store`` for the life of the app (None without a store)."""
    if store is None:
        yield None
        return
    writer = GroupCommitWriter(store)
    writer.start()
    try:
        yield writer
    finally:
        with suppress(Exception):
            await writer.stop()
