"""``siyu tags …``: thin commands over :mod:`siyu.tags.service`."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from siyu.core.i18n import N_
from siyu.core.i18n import gettext as _
from siyu.tags import service
from siyu.tags.definitions import Category, Status, definitions_from_yaml
from siyu.tags.service import RefreshOptions

tags_app = typer.Typer(
    help="Tags: the library, definitions as YAML, refresh, history.", no_args_is_help=True
)
console = Console()

STEPS = {
    "events": N_("Preparing events"),
    "person": N_("Computing per-person tags"),
    "population": N_("Scoring against the whole pool (RFM)"),
    "history": N_("Recording what changed"),
    "publish": N_("Publishing"),
    "stats": N_("Coverage and distributions"),
    "done": N_("Done"),
}
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _register() -> None:
    from siyu.cli_stores import handle_errors, open_stores, read_text_file

    @tags_app.command("list")
    @handle_errors
    def list_tags(
        category: Annotated[Category | None, typer.Option(help="Only this category.")] = None,
        status: Annotated[Status | None, typer.Option(help="active or retired.")] = Status.ACTIVE,
        search: Annotated[str | None, typer.Option(help="Key or Chinese name contains.")] = None,
        sort: Annotated[str, typer.Option(help="key, name, category or updated.")] = "key",
        page: Annotated[int, typer.Option(min=1, help="Page number.")] = 1,
        page_size: Annotated[int, typer.Option(min=1, max=500, help="Tags per page.")] = 50,
        as_json: JsonOpt = False,
    ) -> None:
        """List tags with their category, type and cadence."""
        with open_stores() as (_settings, session, _events):
            service.ensure_builtin(session)
            items, total = service.list_tags(
                session,
                category=category.value if category else None,
                status=status.value if status else None,
                search=search,
                sort=sort,
                offset=(page - 1) * page_size,
                limit=page_size,
            )
        if as_json:
            console.print_json(
                json.dumps(
                    {"total": total, "items": [i.model_dump(mode="json") for i in items]},
                    ensure_ascii=False,
                )
            )
            return
        table = Table(title=_("Tags ({shown} of {total})").format(shown=len(items), total=total))
        for column in (
            N_("Tag key"),
            N_("Name"),
            N_("Category"),
            N_("Type"),
            N_("Cadence"),
            N_("Refreshed"),
        ):
            table.add_column(_(column))
        for item in items:
            d = item.definition
            table.add_row(
                item.key,
                d.name_zh,
                d.category.value,
                d.value_type.value,
                d.cadence.value,
                f"{item.refreshed_at:%Y-%m-%d %H:%M}" if item.refreshed_at else "",
            )
        console.print(table)

    @tags_app.command("show")
    @handle_errors
    def show(
        key: Annotated[str, typer.Argument(help="The tag key, e.g. rfm_segment.")],
        as_json: JsonOpt = False,
    ) -> None:
        """One tag: its definition, coverage and value distribution."""
        with open_stores() as (_settings, session, events):
            service.ensure_builtin(session)
            tag = service.get_tag(session, key)
            stats = service.stats(events, key)
        document = {**tag.model_dump(mode="json"), "stats": stats[0] if stats else None}
        if as_json:
            console.print_json(json.dumps(document, ensure_ascii=False, default=str))
            return
        d = tag.definition
        console.print(f"[bold]{d.name_zh}[/] ({d.name_en}) [dim]{tag.key} v{tag.version}[/]")
        console.print(f"{_('Category')}: {d.category.value}  {_('Type')}: {d.value_type.value}")
        console.print(f"{_('Computed as')}: {d.compute.model_dump_json(exclude_defaults=True)}")
        if d.description:
            console.print(d.description)
        if stats:
            s = stats[0]
            console.print(
                _("Coverage: {covered:,} of {people:,} people ({share:.1%})").format(
                    covered=s["covered"], people=s["people"], share=s["coverage"]
                )
            )
            console.print_json(json.dumps(s["distribution"], ensure_ascii=False))

    @tags_app.command("create")
    @handle_errors
    def create(
        file: Annotated[Path, typer.Option("--file", "-f", help="YAML with one or more tags.")],
    ) -> None:
        """Create new tags from YAML (see `siyu tags export` for the format)."""
        definitions = definitions_from_yaml(read_text_file(file))
        with open_stores() as (_settings, session, _events):
            service.ensure_builtin(session)
            for definition in definitions:
                service.create_tag(session, definition, by="cli")
        console.print(_("Created {count} tags").format(count=len(definitions)))

    @tags_app.command("import")
    @handle_errors
    def import_tags(
        file: Annotated[Path, typer.Argument(help="YAML with tags to create or update.")],
    ) -> None:
        """Create or update tags from YAML, all or nothing; each change is a new version."""
        with open_stores() as (_settings, session, _events):
            service.ensure_builtin(session)
            counts = service.import_yaml(session, read_text_file(file), by="cli")
        console.print(
            _("{created} created, {updated} updated, {unchanged} unchanged").format(**counts)
        )

    @tags_app.command("export")
    @handle_errors
    def export(
        keys: Annotated[
            list[str] | None, typer.Argument(help="Tags to export (default: all active).")
        ] = None,
        out: Annotated[Path | None, typer.Option(help="Write to this file.")] = None,
    ) -> None:
        """Export tag definitions as YAML."""
        with open_stores() as (_settings, session, _events):
            service.ensure_builtin(session)
            text = service.export_yaml(session, keys)
        if out is None:
            typer.echo(text, nl=False)
        else:
            out.write_text(text, encoding="utf-8")
            console.print(_("Wrote {path}").format(path=out))

    @tags_app.command("retire")
    @handle_errors
    def retire(key: Annotated[str, typer.Argument(help="The tag key.")]) -> None:
        """Stop computing a tag (undo with `siyu tags restore`)."""
        with open_stores() as (_settings, session, _events):
            service.retire_tag(session, key, by="cli")
        console.print(_("Tag {key} retired").format(key=key))

    @tags_app.command("restore")
    @handle_errors
    def restore(key: Annotated[str, typer.Argument(help="The tag key.")]) -> None:
        """Bring a retired tag back."""
        with open_stores() as (_settings, session, _events):
            service.restore_tag(session, key, by="cli")
        console.print(_("Tag {key} restored").format(key=key))

    @tags_app.command("refresh")
    @handle_errors
    def refresh(
        full: Annotated[
            bool,
            typer.Option(
                "--full/--incremental",
                help="Everybody, or only people with new events since the last refresh.",
            ),
        ] = True,
        tags: Annotated[
            str | None, typer.Option("--tags", help="Comma-separated keys (and what they need).")
        ] = None,
        as_of: Annotated[
            datetime | None, typer.Option(help="Compute as of this instant (default: now).")
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Compute tags and publish them atomically, with their history and coverage."""
        keys = [k.strip() for k in tags.split(",") if k.strip()] if tags else None
        with open_stores() as (settings, session, events):
            options = RefreshOptions(
                tz=settings.tz,
                as_of=as_of.astimezone() if as_of and as_of.tzinfo is None else as_of,
                mode="full" if full else "incremental",
                keys=keys,
            )
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                console=console,
                disable=as_json,
                transient=True,
            ) as bar:
                task = bar.add_task(_("Refreshing tags"), total=6)

                def report(step: str, done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total, description=_(STEPS[step]))

                run = service.refresh(
                    db_session=session, events=events, options=options, progress=report
                )
        if as_json:
            console.print_json(run.model_dump_json())
            return
        seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at else 0
        console.print(
            _(
                "{mode} refresh: {tags} tags for {people:,} people, {changes:,} changes "
                "({seconds:.1f} s)"
            ).format(
                mode=run.mode,
                tags=len(run.tags),
                people=run.people,
                changes=run.changes,
                seconds=seconds,
            )
        )

    @tags_app.command("history")
    @handle_errors
    def history(
        key: Annotated[str, typer.Argument(help="The tag key.")],
        value: Annotated[str | None, typer.Option(help="Only changes to this value.")] = None,
        since: Annotated[datetime | None, typer.Option(help="From this instant.")] = None,
        limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
        as_json: JsonOpt = False,
    ) -> None:
        """Who changed a tag's value (e.g. who became 重要价值客户 since Monday)."""
        with open_stores() as (_settings, session, events):
            service.get_tag(session, key)
            rows = service.history(events, key=key, value=value, since=since, limit=limit)
        if as_json:
            console.print_json(json.dumps(rows, ensure_ascii=False, default=str))
            return
        table = Table(title=_("Changes of {key}").format(key=key))
        for column in (_("Person"), _("From"), _("To"), _("When")):
            table.add_column(column)
        for row in rows:
            table.add_row(
                row["person_id"],
                row["old_value"] or "",
                row["new_value"] or "",
                f"{row['changed_at']:%Y-%m-%d %H:%M}",
            )
        console.print(table)

    @tags_app.command("assign")
    @handle_errors
    def assign(
        key: Annotated[str, typer.Argument(help="A manual or import tag.")],
        person: Annotated[list[str], typer.Option(help="Person id (repeatable).")],
        value: Annotated[str, typer.Option(help="The value (JSON for lists and numbers).")],
    ) -> None:
        """Give people a value of a manual tag; it shows after the next refresh."""
        parsed = _value(value)
        with open_stores() as (_settings, session, _events):
            count = service.assign(session, key, dict.fromkeys(person, parsed), by="cli")
        console.print(_("Assigned {key} to {count} people").format(key=key, count=count))


def _value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


_register()
