"""The ``siyu`` command: thin Typer commands over the services.

Every command reads the settings when it starts, turns a :class:`SiyuError` into a clear
message with a hint (exit code 2), and never shows a traceback for a problem the user can fix.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from siyu import __version__
from siyu.cli_stores import cli_settings as _settings
from siyu.cli_stores import console, err_console, handle_errors
from siyu.collect.webhooks.cli import app as webhooks_app
from siyu.core.config import Settings, ensure_home
from siyu.core.i18n import N_
from siyu.core.i18n import gettext as _

app = typer.Typer(
    name="siyu",
    help="siyu (私域): private-domain customer operations. Every command has --help.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Operational database: migrations and status.", no_args_is_help=True)
config_app = typer.Typer(help="Show the effective settings.", no_args_is_help=True)
demo_app = typer.Typer(
    help="Generate a demo brand and run the product on it. Without a sub-command: build and serve.",
    invoke_without_command=True,
)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(demo_app, name="demo")
app.add_typer(webhooks_app, name="webhooks")


def _version(value: bool) -> None:
    if value:
        console.print(f"siyu {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """siyu (私域): private-domain customer operations."""


# -- config -------------------------------------------------------------------------------


@config_app.command("show")
@handle_errors
def config_show(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the effective settings, secrets hidden."""
    view = _settings().public_view()
    if as_json:
        console.print_json(json.dumps(view))
        return
    table = Table(title=_("Effective settings"))
    table.add_column(_("Setting"))
    table.add_column(_("Value"))
    for key, value in view.items():
        table.add_row(key, value)
    console.print(table)


# -- db -----------------------------------------------------------------------------------


@db_app.command("upgrade")
@handle_errors
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "heads") -> None:
    """Apply the migrations to the operational database."""
    from siyu.store import open_database
    from siyu.store.migrate import upgrade

    settings = _settings()
    ensure_home(settings)
    database = open_database(settings.resolved_database_url)
    try:
        current = upgrade(database, revision)
    finally:
        database.dispose()
    console.print(_("Database is at revision {revision}").format(revision=current))


@db_app.command("status")
@handle_errors
def db_status() -> None:
    """Show the current and the latest migration revision."""
    from siyu.store import open_database
    from siyu.store.migrate import current_revision, head_revision

    settings = _settings()
    database = open_database(settings.resolved_database_url)
    try:
        current, head = current_revision(database), head_revision(database)
    finally:
        database.dispose()
    console.print(f"{_('current')}: {current or '-'}  {_('latest')}: {head}")


# -- serve --------------------------------------------------------------------------------


@app.command("serve")
@handle_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
) -> None:
    """Serve the API (and console) with uvicorn."""
    from siyu.demo.service import serve_forever

    serve_forever(_settings(), host=host, port=port)


@app.command()
@handle_errors
def tick(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Do the scheduled work that is due now (tags by cadence, tiers, segments), then exit."""
    from siyu.cli_stores import open_stores
    from siyu.scheduler import tick as run_tick
    from siyu.store import open_database

    with open_stores() as (settings, _session, events):
        database = open_database(settings.resolved_database_url)
        try:
            summary = run_tick(database, events, settings)
        finally:
            database.dispose()
    if as_json:
        console.print_json(json.dumps(summary, ensure_ascii=False))
        return
    console.print(summary)


# -- demo ---------------------------------------------------------------------------------

PeopleOpt = Annotated[
    int, typer.Option("--people", min=100, max=5_000_000, help="Number of people.")
]
DaysOpt = Annotated[int, typer.Option("--days", min=30, max=1095, help="Days of history.")]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, help="Random seed: same seed, same data.")]
EndOpt = Annotated[
    str | None,
    typer.Option(
        "--end-date", help="Last day of history (YYYY-MM-DD). Default: yesterday in SIYU_TIMEZONE."
    ),
]


def _end_date(value: str | None, settings: Settings) -> date:
    from siyu.demo.service import default_end_date

    if value is None:
        return default_end_date(settings)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(_("use YYYY-MM-DD"), param_hint="--end-date") from None


@demo_app.callback()
@handle_errors
def demo(
    ctx: typer.Context,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Build only; do not serve.")] = False,
    reset: Annotated[
        bool, typer.Option("--reset", help="Delete the stores and start over.")
    ] = False,
    people: PeopleOpt = 20_000,
    days: DaysOpt = 365,
    seed: SeedOpt = 42,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
) -> None:
    """Generate the demo brand if none exists, compute everything, and serve the console."""
    if ctx.invoked_subcommand is not None:
        return
    from siyu.demo.service import run_demo

    run_demo(
        _settings(),
        people=people,
        days=days,
        seed=seed,
        reset_first=reset,
        serve=not no_serve,
        host=host,
        port=port,
        console=console,
    )


@demo_app.command("generate")
@handle_errors
def demo_generate(
    people: PeopleOpt = 20_000,
    days: DaysOpt = 365,
    seed: SeedOpt = 42,
    end_date: EndOpt = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write Parquet files to this directory instead of the stores."),
    ] = None,
    reset: Annotated[
        bool, typer.Option("--reset", help="Move the existing stores aside first.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Generate a deterministic demo brand into the stores (or Parquet with --out)."""
    from siyu.demo.generator import DemoSpec
    from siyu.demo.service import generate_into_stores, generate_to_parquet
    from siyu.demo.service import reset as reset_stores

    settings = _settings()
    spec = DemoSpec(people=people, days=days, seed=seed, end_date=_end_date(end_date, settings))
    quiet = as_json or not sys.stderr.isatty()
    if out is not None:
        summary = generate_to_parquet(spec, out, console=None if quiet else err_console)
    else:
        if reset:
            reset_stores(settings, err_console)
        summary = generate_into_stores(settings, spec, console=None if quiet else err_console)
    _print_summary(summary, as_json)


SUMMARY_LABELS = {
    "brand": N_("Brand"),
    "people": N_("People"),
    "days": N_("Days of history"),
    "seed": N_("Seed"),
    "start_date": N_("First day"),
    "end_date": N_("Last day"),
    "events": N_("Events"),
    "orders": N_("Orders"),
    "seconds": N_("Seconds"),
    "events_per_second": N_("Events per second"),
}


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(summary, default=str, ensure_ascii=False))
        return
    table = Table(title=_("Demo brand generated"))
    table.add_column(_("Item"))
    table.add_column(_("Value"), justify="right")
    for key, value in summary.items():
        label = _(SUMMARY_LABELS.get(key, key))
        table.add_row(label, f"{value:,}" if isinstance(value, int) else str(value))
    console.print(table)


# Domain command groups; imported last because they use handle_errors and _settings above.
from siyu.collect.cli import collect_app, sources_app  # noqa: E402

app.add_typer(sources_app, name="sources")
app.add_typer(collect_app, name="collect")

from siyu.collect.importer.cli import import_app  # noqa: E402

app.add_typer(import_app, name="import")

from siyu.tags.cli import tags_app  # noqa: E402

app.add_typer(tags_app, name="tags")

from siyu.segments.cli import segments_app  # noqa: E402

app.add_typer(segments_app, name="segments")

from siyu.segments.tiers_api import tiers_app  # noqa: E402

app.add_typer(tiers_app, name="tiers")

from siyu.analytics.api import analytics_app, experiments_app, report_app  # noqa: E402

app.add_typer(analytics_app, name="analytics")
app.add_typer(experiments_app, name="experiments")
app.add_typer(report_app, name="report")

from siyu.privacy.cli import users_app  # noqa: E402

app.add_typer(users_app, name="users")


def main() -> None:
    app()


if __name__ == "__main__":
    main()

from siyu.identity.cli import identity_app, people_app  # noqa: E402

app.add_typer(identity_app, name="identity")
app.add_typer(people_app, name="people")
