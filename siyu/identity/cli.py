"""``siyu identity …`` and ``siyu people show``: thin commands over the services."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from siyu.core.config import Settings, secret_key
from siyu.core.i18n import gettext as _
from siyu.events import EventStore
from siyu.identity import service
from siyu.identity.models import MergeRead, ResolveSummary
from siyu.identity.rules import IdentityRules

identity_app = typer.Typer(
    help="OneID: resolve identifiers into people, merges, unmerge.", no_args_is_help=True
)
people_app = typer.Typer(help="People: the 360° profile.", no_args_is_help=True)
console = Console()


def _hash_key(settings: Settings) -> bytes:
    return service.derive_hash_key(secret_key(settings))


def run_resolve(
    settings: Settings, session: Session, events: EventStore, limit: int = 3
) -> ResolveSummary:
    return service.resolve(
        db_session=session,
        events=events,
        hash_key=_hash_key(settings),
        rules=IdentityRules(shared_device_limit=limit),
    )


def _register() -> None:
    from siyu.cli_stores import handle_errors, open_stores

    @identity_app.command("resolve")
    @handle_errors
    def resolve(
        shared_device_limit: Annotated[
            int,
            typer.Option(
                min=1,
                help="A device seen with more people than this is shared and never merges anyone.",
            ),
        ] = 3,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Resolve every identifier in the event store into people (OneID)."""
        with open_stores() as (settings, session, events):
            summary = run_resolve(settings, session, events, shared_device_limit)
        if as_json:
            console.print_json(summary.model_dump_json())
            return
        console.print(
            _(
                "{people:,} people from {identifiers:,} identifiers: {new_people:,} new, "
                "{merges:,} merges, {splits:,} components split by the rules, "
                "{shared_devices:,} shared devices ignored ({seconds} s)"
            ).format(**summary.model_dump())
        )

    @identity_app.command("merges")
    @handle_errors
    def merges(
        person: Annotated[
            str | None, typer.Option(help="Only merges involving this person.")
        ] = None,
        limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """List merges, newest first."""
        with open_stores() as (_config, session, _events):
            rows = [
                MergeRead.model_validate(m)
                for m in service.list_merges(db_session=session, person_id=person, limit=limit)
            ]
        if as_json:
            console.print_json(json.dumps([r.model_dump(mode="json") for r in rows]))
            return
        table = Table(title=_("Merges"))
        for column in ("id", "person_id", "merged_id", "rule", "types", "created_at", "undone_at"):
            table.add_column(_(column))
        for r in rows:
            table.add_row(
                str(r.id),
                r.person_id,
                r.merged_id,
                r.rule,
                ",".join(r.evidence.get("types", [])),
                f"{r.created_at:%Y-%m-%d %H:%M}",
                f"{r.undone_at:%Y-%m-%d %H:%M}" if r.undone_at else "",
            )
        console.print(table)

    @identity_app.command("unmerge")
    @handle_errors
    def unmerge(
        merge_id: Annotated[
            int, typer.Argument(help="The merge to undo (see `siyu identity merges`).")
        ],
    ) -> None:
        """Split a wrong merge: restore the merged person and its identifiers, keep them apart."""
        with open_stores() as (settings, session, events):
            merge = service.unmerge(db_session=session, merge_id=merge_id)
            run_resolve(settings, session, events)
        console.print(
            _("Merge {id} undone: {merged} is a person of its own again").format(
                id=merge.id, merged=merge.merged_id
            )
        )

    @people_app.command("show")
    @handle_errors
    def show(
        who: Annotated[
            str, typer.Argument(help="A person id (p_…) or TYPE:VALUE, e.g. phone:13800138000.")
        ],
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Show a person's profile: identifiers (masked), traits and latest events."""
        from siyu.profiles import service as profiles
        from siyu.profiles.traits import load_trait_rules

        with open_stores() as (settings, session, events):
            person_id = (
                who
                if ":" not in who
                else profiles.find_person_id(
                    db_session=session, hash_key=_hash_key(settings), identifier=who
                )
            )
            profile = profiles.profile(
                db_session=session,
                events=events,
                person_id=person_id,
                rules=load_trait_rules(settings.home),
            )
        if as_json:
            console.print_json(profile.model_dump_json())
            return
        console.print(f"[bold]{profile.person_id}[/]  {_('created')} {profile.created_at:%Y-%m-%d}")
        for identifier in profile.identifiers:
            console.print(f"  {identifier.type}: {identifier.masked}")
        for key, value in profile.traits.items():
            console.print(f"  [cyan]{key}[/] = {value}")
        table = Table(title=_("Latest events"))
        for column in ("ts", "name", "channel", "order_id", "amount"):
            table.add_column(_(column))
        for e in profile.latest_events:
            table.add_row(
                f"{e.ts:%Y-%m-%d %H:%M}", e.name, e.channel or "", e.order_id or "", e.amount or ""
            )
        console.print(table)


_register()
