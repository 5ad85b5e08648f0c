"""Building and running the demo brand: generate into the stores or Parquet, reset, serve."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select

from siyu.core.clock import utcnow
from siyu.core.config import Settings, ensure_home, secret_key
from siyu.core.errors import ConflictError
from siyu.core.files import create_private_file
from siyu.core.i18n import N_
from siyu.core.i18n import gettext as _
from siyu.core.ids import new_token
from siyu.demo.generator import DemoSpec, generate
from siyu.demo.models import DemoDataset
from siyu.demo.reference import BRAND
from siyu.events import EVENTS_SCHEMA, EventStore, open_event_store
from siyu.privacy import service as users
from siyu.privacy.models import Role, UserCreate
from siyu.store import Database, open_database
from siyu.store.migrate import upgrade

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD_FILE = "admin-password"  # noqa: S105 - a file name, not a password
PEOPLE_TABLE = "demo_people"
PRODUCTS_TABLE = "products"


def default_end_date(settings: Settings) -> date:
    """Yesterday in the brand's time zone: the demo's history ends with the last full day."""
    return (datetime.now(settings.tz) - timedelta(days=1)).date()


def _demo_now(database: Database, settings: Settings) -> datetime | None:
    """The instant the demo brand's history ends (local midnight after its last day), so
    tags describe the brand as generated, however long ago that was; None = now."""
    dataset = latest_dataset(database)
    if dataset is None:
        return None
    return datetime.combine(dataset.end_date + timedelta(days=1), clock_time(0), settings.tz)


def _progress(console: Console | None) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[events]:,} events"),
        TimeElapsedColumn(),
        console=console,
        disable=console is None,
        transient=False,
    )


def _summary(spec: DemoSpec, events: int, orders: int, seconds: float) -> dict[str, Any]:
    return {
        "brand": BRAND,
        "people": spec.people,
        "days": spec.days,
        "seed": spec.seed,
        "start_date": spec.start_date.isoformat(),
        "end_date": spec.end_date.isoformat(),
        "events": events,
        "orders": orders,
        "seconds": round(seconds, 2),
        "events_per_second": round(events / seconds) if seconds > 0 else 0,
    }


def _order_count(batch: pa.Table) -> int:
    names = batch.column("name")
    return int(pc.sum(pc.equal(names, "order_paid")).as_py() or 0)


def write_events(
    spec: DemoSpec, events: EventStore, console: Console | None = None
) -> dict[str, Any]:
    """Generate the brand and append it to ``events`` (catalogue and ground truth as tables).

    Appending chunk k overlaps generating chunk k+1 (DuckDB and numpy release the GIL), with
    at most one chunk waiting, so memory stays bounded while both cores work.
    """
    started = time.perf_counter()
    data = generate(spec)
    total = orders = 0
    with _progress(console) as progress, ThreadPoolExecutor(max_workers=1) as writer:
        task = progress.add_task(_("Generating demo brand"), total=spec.chunks, events=0)
        pending: Future[Any] | None = None
        for batch in data.event_batches():
            if pending is not None:
                pending.result()
                progress.update(task, advance=1, events=total)
            pending = writer.submit(events.append, batch)
            total += batch.num_rows
            orders += _order_count(batch)
        if pending is not None:
            pending.result()
            progress.update(task, advance=1, events=total)
    events.replace_table(PRODUCTS_TABLE, data.products)
    events.replace_table(PEOPLE_TABLE, data.people)
    return _summary(spec, total, orders, time.perf_counter() - started)


def generate_to_parquet(
    spec: DemoSpec, out: Path, console: Console | None = None
) -> dict[str, Any]:
    """Write events.parquet, people.parquet and products.parquet into ``out``."""
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    data = generate(spec)
    total = orders = 0
    with (
        _progress(console) as progress,
        pq.ParquetWriter(out / "events.parquet", EVENTS_SCHEMA, compression="zstd") as writer,
    ):
        task = progress.add_task(_("Generating demo brand"), total=spec.chunks, events=0)
        for batch in data.event_batches():
            writer.write_table(batch)
            total += batch.num_rows
            orders += _order_count(batch)
            progress.update(task, advance=1, events=total)
    pq.write_table(data.people, out / "people.parquet", compression="zstd")
    pq.write_table(data.products, out / "products.parquet", compression="zstd")
    return _summary(spec, total, orders, time.perf_counter() - started)


def latest_dataset(database: Database) -> DemoDataset | None:
    with database.unit_of_work() as session:
        return session.scalars(select(DemoDataset).order_by(DemoDataset.id.desc()).limit(1)).first()


def generate_into_stores(
    settings: Settings, spec: DemoSpec, console: Console | None = None
) -> dict[str, Any]:
    """Generate into the configured stores; refuses to mix two brands in one store."""
    ensure_home(settings)
    database = open_database(settings.resolved_database_url)
    try:
        upgrade(database)
        with open_event_store(settings.resolved_events_url) as events:
            return _generate_once(database, events, spec, console)
    finally:
        database.dispose()


def _generate_once(
    database: Database, events: EventStore, spec: DemoSpec, console: Console | None
) -> dict[str, Any]:
    existing = events.count()
    if existing:
        raise ConflictError(
            N_("The event store already holds {count} events"),
            hint=N_("Run `siyu demo --reset` to start over, or point SIYU_HOME elsewhere."),
            count=existing,
        )
    summary = write_events(spec, events, console)
    with database.unit_of_work() as session:
        session.add(
            DemoDataset(
                brand=BRAND,
                seed=spec.seed,
                people=spec.people,
                days=spec.days,
                end_date=spec.end_date,
                events=summary["events"],
                orders=summary["orders"],
                seconds=summary["seconds"],
            )
        )
    return summary


def reset(settings: Settings, console: Console | None = None) -> Path | None:
    """Move the embedded stores aside (SIYU_HOME/trash/<time>/), or empty an external database.

    Nothing is deleted outright: the previous data stays in the trash folder until the next
    reset, so a mistaken reset can be undone by moving the files back.
    """
    home = ensure_home(settings)
    trash_root = home / "trash"
    stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
    target = trash_root / stamp
    candidates = []
    if not settings.database_url:
        db_file = home / "siyu.db"
        candidates += [db_file, db_file.with_name("siyu.db-wal"), db_file.with_name("siyu.db-shm")]
    events_path = settings.resolved_events_url.removeprefix("duckdb://")
    if events_path not in ("", ":memory:", "/:memory:"):
        candidates += [Path(events_path), Path(events_path + ".wal")]
    present = [path for path in candidates if path.exists()]
    if settings.database_url:
        from alembic import command

        from siyu.store.migrate import alembic_config

        database = open_database(settings.database_url)
        try:
            command.downgrade(alembic_config(database), "base")
        finally:
            database.dispose()
    if not present:
        return None
    if trash_root.exists():
        shutil.rmtree(trash_root)
    target.mkdir(parents=True)
    for path in present:
        shutil.move(str(path), target / path.name)
    if console is not None:
        console.print(_("Previous data moved to {path}").format(path=target))
    return target


def ensure_admin(settings: Settings, database: Database) -> tuple[str, str | None]:
    """Create the demo admin on first run with a random password saved to SIYU_HOME (0600).

    Returns the user name and the password if it is still the generated one.
    """
    password_file = ensure_home(settings) / ADMIN_PASSWORD_FILE
    with database.unit_of_work() as session:
        if users.get_by_username(db_session=session, username=ADMIN_USERNAME) is None:
            generated = new_token(12)
            users.create(
                db_session=session,
                user_in=UserCreate(
                    username=ADMIN_USERNAME,
                    password=generated,
                    role=Role.admin,
                    display_name="管理员",
                ),
            )
            password_file.unlink(missing_ok=True)
            create_private_file(password_file, generated + "\n")
    password = password_file.read_text().strip() if password_file.exists() else None
    return ADMIN_USERNAME, password


def run_demo(
    settings: Settings,
    *,
    people: int,
    days: int,
    seed: int,
    reset_first: bool,
    serve: bool,
    host: str,
    port: int,
    console: Console,
) -> None:
    """``siyu demo``: build the demo brand if none exists, compute every step, then serve."""
    secret_key(settings)
    if reset_first:
        reset(settings, console)
    database = open_database(settings.resolved_database_url)
    upgrade(database)
    events = open_event_store(settings.resolved_events_url)
    try:
        dataset = latest_dataset(database)
        if dataset is None and events.count() == 0:
            spec = DemoSpec(
                people=people, days=days, seed=seed, end_date=default_end_date(settings)
            )
            summary = _generate_once(database, events, spec, console)
            console.print(
                _("Generated {people:,} people and {events:,} events in {seconds} s").format(
                    **summary
                )
            )
        else:
            count = events.count()
            console.print(
                _("Using the existing demo data ({events:,} events)").format(events=count)
            )
        _compute(settings, database, events, console)
        username, password = ensure_admin(settings, database)
        url = f"http://{host}:{port}"
        console.print(
            f"[bold green]siyu[/] {_('console and API')}: {url}  (API docs: {url}/docs)",
            soft_wrap=True,
        )
        shown = password if password else _("(changed since the demo created it)")
        console.print(f"{_('Admin login')}: {username} / {shown}")
        database.dispose()
        if serve:
            serve_forever(settings, host=host, port=port, events=events)
    finally:
        events.close()


def _compute(settings: Settings, database: Database, events: EventStore, console: Console) -> None:
    """Every compute step the product has, in data-flow order (later issues add theirs)."""
    from siyu.identity import service as identity

    with database.unit_of_work() as session:
        summary = identity.resolve(
            db_session=session,
            events=events,
            hash_key=identity.derive_hash_key(secret_key(settings)),
        )
    console.print(
        _("OneID: {people:,} people from {identifiers:,} identifiers ({seconds} s)").format(
            **summary.model_dump()
        )
    )
    from siyu.tags import service as tags

    with database.unit_of_work() as session:
        run = tags.refresh(
            db_session=session,
            events=events,
            options=tags.RefreshOptions(tz=settings.tz, as_of=_demo_now(database, settings)),
        )
    console.print(
        _("Tags: {count} tags for {people:,} people").format(count=len(run.tags), people=run.people)
    )
    for key in ("lifecycle_stage", "rfm_segment"):
        for stats in tags.stats(events, key):
            parts = ", ".join(
                f"{item['value']} {item['people'] / max(stats['people'], 1):.0%}"
                for item in stats["distribution"]["top"]
            )
            console.print(f"  {key}: {parts}")
    from siyu.segments import tiers

    scheme = tiers.load_scheme(settings.home)
    moved = tiers.evaluate(events, scheme, tz=settings.tz, as_of=run.as_of)
    levels = [
        f"{level.name_zh} {moved.distribution.get(level.key, 0):,}" for level in scheme.levels
    ]
    console.print(_("Tiers: {distribution}").format(distribution=", ".join(levels)))


def serve_forever(
    settings: Settings, *, host: str, port: int, events: EventStore | None = None
) -> None:
    """Run the API with uvicorn. Problems a user can fix (a home that cannot be written, an
    event store locked by another process or damaged) stop here with a clear message rather
    than as a traceback from inside the server."""
    import uvicorn

    from siyu.api import create_app

    secret_key(settings)
    if events is None:
        open_event_store(settings.resolved_events_url).close()
    app = create_app(settings, events=events, scheduler=True)
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower(), access_log=False)
