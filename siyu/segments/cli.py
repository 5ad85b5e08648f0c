"""``siyu segments …``: thin commands over :mod:`siyu.segments.service`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from siyu.core.config import secret_key
from siyu.core.i18n import N_
from siyu.core.i18n import gettext as _
from siyu.identity import service as identity
from siyu.segments import service
from siyu.segments.models import SegmentCreate
from siyu.segments.rules import to_json, to_text

segments_app = typer.Typer(
    help="Segments: count a rule, save it, evaluate members, export.", no_args_is_help=True
)
console = Console()
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _register() -> None:
    from siyu.cli_stores import handle_errors, open_stores, read_text_file

    @segments_app.command("count")
    @handle_errors
    def count(
        key: Annotated[str | None, typer.Argument(help="A saved segment (or use --rule).")] = None,
        rule: Annotated[str | None, typer.Option(help="An unsaved rule, as text.")] = None,
        sample: Annotated[int, typer.Option(min=0, max=100, help="Show this many members.")] = 0,
        as_json: JsonOpt = False,
    ) -> None:
        """Count the members of a saved segment or of an unsaved rule (a live preview)."""
        with open_stores() as (settings, session, events):
            world = service.world(session, events, tz=settings.tz)
            if rule is not None:
                parsed = service.read_rule(text=rule)
                total = service.count(world, parsed)
                members = service.sample(world, parsed, size=sample) if sample else []
                document = {"count": total, "rule_text": to_text(parsed), "rule": to_json(parsed)}
            elif key is not None:
                total = int(service.members_of(world, key).count().to_pyarrow().as_py())
                members, document = [], {"key": key, "count": total}
            else:
                raise typer.BadParameter(_("give a segment key or --rule"))
        if as_json:
            console.print_json(json.dumps({**document, "sample": members}, ensure_ascii=False))
            return
        console.print(_("{count:,} people").format(count=total))
        for member in members:
            console.print(f"  {member['person_id']}")

    @segments_app.command("create")
    @handle_errors
    def create(
        key: Annotated[str, typer.Argument(help="snake_case key, e.g. vip_lapsed.")],
        name: Annotated[str, typer.Option(help="Name operators see, e.g. 沉睡高价值客户.")],
        rule: Annotated[str | None, typer.Option(help="The rule as text.")] = None,
        rule_file: Annotated[
            Path | None, typer.Option(help="The rule as a JSON file (its JSON form).")
        ] = None,
        static: Annotated[
            Path | None,
            typer.Option(help="A static list: one person id or TYPE:VALUE (phone:138…) a line."),
        ] = None,
        schedule: Annotated[str, typer.Option(help="manual, daily or hourly.")] = "daily",
        description: Annotated[str, typer.Option(help="What it is for.")] = "",
    ) -> None:
        """Save a segment: a dynamic rule, or a static list of people."""
        kind: Literal["dynamic", "static"] = "static" if static else "dynamic"
        rule_json = json.loads(read_text_file(rule_file)) if rule_file else None
        spec = SegmentCreate.model_validate(
            {
                "key": key,
                "name": name,
                "description": description,
                "kind": kind,
                "rule_text": rule,
                "rule": rule_json,
                "schedule": schedule,
            }
        )
        with open_stores() as (settings, session, events):
            world = service.world(session, events, tz=settings.tz)
            created = service.create_segment(session, world, spec)
            if static is not None:
                lines = [x.strip() for x in read_text_file(static).splitlines() if x.strip()]
                hash_key = identity.derive_hash_key(secret_key(settings))
                ids = service.people_from_lines(session, hash_key, lines)
                result = service.upload_members(session, events, key, ids)
                console.print(
                    _("{members:,} members; {unknown:,} unknown ids left out").format(**result)
                )
        console.print(_("Segment {key} saved").format(key=created.key))

    @segments_app.command("list")
    @handle_errors
    def list_segments(as_json: JsonOpt = False) -> None:
        """List saved segments."""
        with open_stores() as (_settings, session, _events):
            items, total = service.list_segments(session, limit=500)
        if as_json:
            console.print_json(
                json.dumps({"total": total, "items": [i.model_dump(mode="json") for i in items]})
            )
            return
        table = Table(title=_("Segments"))
        for column in (N_("Segment key"), N_("Name"), N_("Kind"), N_("Members"), N_("Rule")):
            table.add_column(_(column))
        for item in items:
            members = "" if item.members is None else f"{item.members:,}"
            table.add_row(item.key, item.name, item.kind, members, item.rule_text or "")
        console.print(table)

    @segments_app.command("evaluate")
    @handle_errors
    def evaluate(
        key: Annotated[str, typer.Argument(help="The segment.")], as_json: JsonOpt = False
    ) -> None:
        """Snapshot the members now and record who entered and who left."""
        with open_stores() as (settings, session, events):
            result = service.evaluate(service.world(session, events, tz=settings.tz), key)
        if as_json:
            console.print_json(result.model_dump_json())
            return
        console.print(
            _("{members:,} members: {entered:,} entered, {exited:,} exited").format(
                **result.model_dump()
            )
        )

    @segments_app.command("export")
    @handle_errors
    def export(
        key: Annotated[str, typer.Argument(help="The segment.")],
        out: Annotated[Path, typer.Option(help="The file to write.")],
        fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
        columns: Annotated[
            str | None, typer.Option(help="Comma-separated tags to include.")
        ] = None,
    ) -> None:
        """Export members with tag columns; identifiers are masked (138****5678)."""
        if fmt not in ("csv", "parquet"):
            raise typer.BadParameter(_("use csv or parquet"), param_hint="--format")
        wanted = [c.strip() for c in columns.split(",") if c.strip()] if columns else []
        with open_stores() as (settings, session, events):
            world = service.world(session, events, tz=settings.tz)
            data = service.export_rows(world, key, columns=wanted)
        service.write_export(data, out, fmt)
        console.print(_("Wrote {rows:,} rows to {path}").format(rows=data.num_rows, path=out))


_register()
