"""``siyu sources …`` (write keys) and ``siyu collect dead-letters …``: thin commands."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.table import Table

from siyu.cli_stores import cli_settings as _settings
from siyu.cli_stores import console, handle_errors
from siyu.collect import deadletters
from siyu.collect import service as sources
from siyu.collect.models import DeadLetterRead, SourceCreate, SourceRead, SourceWithKey
from siyu.core.config import ensure_home
from siyu.core.i18n import gettext as _
from siyu.store import Database, open_database

sources_app: typer.Typer = typer.Typer(
    help="Sources: who may send events to the tracking API, with which write key.",
    no_args_is_help=True,
)
collect_app: typer.Typer = typer.Typer(
    help="Collection: the tracking API's dead letters.", no_args_is_help=True
)
dead_letters_app = typer.Typer(
    help="Messages the tracking API refused: list them, replay them.", no_args_is_help=True
)
collect_app.add_typer(dead_letters_app, name="dead-letters")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@contextmanager
def _database() -> Iterator[Database]:
    settings = _settings()
    ensure_home(settings)
    database = open_database(settings.resolved_database_url)
    try:
        yield database
    finally:
        database.dispose()


def _print_json(value: Any) -> None:
    console.print_json(json.dumps(value, default=str, ensure_ascii=False))


def _print_key(created: SourceWithKey, as_json: bool) -> None:
    if as_json:
        _print_json(created.model_dump(mode="json"))
        return
    console.print(f"{_('Source')}: {created.source.id} ({created.source.name})")
    console.print(f"{_('Write key')}: {created.write_key}", highlight=False)
    console.print(_("Keep the key now: it is not shown again."))


@sources_app.command("create")
@handle_errors
def sources_create(
    name: Annotated[str, typer.Argument(help="A name for the sender (site, app, back end).")],
    user_id_type: Annotated[
        str,
        typer.Option(
            "--user-id-type",
            help="Which identifier a userId is: member_no, unionid, openid, "
            "wecom_external_userid, phone, email, device_id, anonymous_id or custom:NAME.",
        ),
    ] = "member_no",
    as_json: JsonOpt = False,
) -> None:
    """Create a source and print its write key (shown once)."""
    with _database() as database, database.unit_of_work() as db_session:
        source, key = sources.create(
            db_session=db_session,
            source_in=SourceCreate(name=name, user_id_type=user_id_type),
        )
        created = SourceWithKey(source=SourceRead.model_validate(source), write_key=key)
    _print_key(created, as_json)


@sources_app.command("list")
@handle_errors
def sources_list(as_json: JsonOpt = False) -> None:
    """List the sources (key prefixes only)."""
    with _database() as database, database.unit_of_work() as db_session:
        rows = [SourceRead.model_validate(s) for s in sources.list_all(db_session=db_session)]
    if as_json:
        _print_json([row.model_dump(mode="json") for row in rows])
        return
    table = Table(title=_("Sources"))
    for label in (_("ID"), _("Name"), _("Key"), _("userId is"), _("Status"), _("Created")):
        table.add_column(label)
    for row in rows:
        table.add_row(
            row.id,
            row.name,
            f"{row.key_prefix}…",
            row.user_id_type,
            row.status.value,
            row.created_at.isoformat(timespec="seconds"),
        )
    console.print(table)


@sources_app.command("rotate")
@handle_errors
def sources_rotate(
    source_id: Annotated[str, typer.Argument(help="The source id (src_…).")],
    as_json: JsonOpt = False,
) -> None:
    """Give the source a new write key; the old one stops working."""
    with _database() as database, database.unit_of_work() as db_session:
        source, key = sources.rotate(db_session=db_session, source_id=source_id)
        rotated = SourceWithKey(source=SourceRead.model_validate(source), write_key=key)
    _print_key(rotated, as_json)


@sources_app.command("revoke")
@handle_errors
def sources_revoke(
    source_id: Annotated[str, typer.Argument(help="The source id (src_…).")],
) -> None:
    """Revoke the source's write key for good (requests with it get 401)."""
    with _database() as database, database.unit_of_work() as db_session:
        source = sources.revoke(db_session=db_session, source_id=source_id)
        console.print(_("Source {source_id} is revoked").format(source_id=source.id))


@dead_letters_app.command("list")
@handle_errors
def dead_letters_list(
    source: Annotated[str | None, typer.Option("--source", help="Only this source.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="At most N.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List refused messages, newest first."""
    with _database() as database, database.unit_of_work() as db_session:
        letters = [
            DeadLetterRead.model_validate(letter)
            for letter in deadletters.list_all(db_session=db_session, source_id=source, limit=limit)
        ]
    if as_json:
        _print_json([letter.model_dump(mode="json") for letter in letters])
        return
    table = Table(title=_("Dead letters"))
    for label in (_("ID"), _("Received"), _("Field"), _("Reason"), _("Replayed")):
        table.add_column(label)
    for letter in letters:
        table.add_row(
            letter.id,
            letter.received_at.isoformat(timespec="seconds"),
            letter.field or "",
            letter.reason,
            letter.replayed_at.isoformat(timespec="seconds") if letter.replayed_at else "",
        )
    console.print(table)


@dead_letters_app.command("replay")
@handle_errors
def dead_letters_replay(
    dead_letter_id: Annotated[str | None, typer.Option("--id", help="Replay this one.")] = None,
    replay_all: Annotated[
        bool, typer.Option("--all", help="Replay every letter not replayed yet.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Validate dead letters again; store the ones that now pass and mark them replayed."""
    from siyu.events import open_event_store

    if (dead_letter_id is None) == (not replay_all):
        raise typer.BadParameter(_("give either --id ID or --all"))
    settings = _settings()
    with (
        _database() as database,
        open_event_store(settings.resolved_events_url) as events,
        database.unit_of_work() as db_session,
    ):
        result = deadletters.replay(
            db_session=db_session,
            events=events,
            dead_letter_id=dead_letter_id,
            replay_all=replay_all,
        )
    if as_json:
        _print_json(result.model_dump())
        return
    console.print(
        _("Replayed {replayed}, duplicates {duplicates}, still refused {still}").format(
            replayed=result.replayed, duplicates=result.duplicates, still=result.still_rejected
        )
    )
