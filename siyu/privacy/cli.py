"""``siyu users create|list``: console users, thin over :mod:`siyu.privacy.service`."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from siyu.cli_stores import cli_settings, console, err_console, handle_errors
from siyu.core.errors import InvalidInputError
from siyu.core.i18n import N_
from siyu.core.i18n import gettext as _
from siyu.privacy import service
from siyu.privacy.models import Role, UserCreate, UserRead
from siyu.store import Database, open_database

users_app = typer.Typer(help="Console users and their roles.", no_args_is_help=True)


def _database() -> Database:
    from siyu.store.migrate import require_current

    settings = cli_settings()
    database = open_database(settings.resolved_database_url)
    require_current(database)
    return database


def _read_password() -> str:
    """The password from standard input: prompted twice on a terminal, else its first line."""
    if sys.stdin.isatty():
        password: str = typer.prompt(
            _("Password"), hide_input=True, confirmation_prompt=True, err=True
        )
        return password
    return sys.stdin.readline().rstrip("\r\n")


@users_app.command("create")
@handle_errors
def create(
    username: Annotated[str, typer.Option("--username", help="Login name.")],
    role: Annotated[Role, typer.Option("--role", help="admin, operator, analyst or auditor.")],
    password: Annotated[
        str | None,
        typer.Option(
            "--password", help="At least 8 characters. Default: read from standard input."
        ),
    ] = None,
    display_name: Annotated[
        str, typer.Option("--display-name", help="Name shown in the console.")
    ] = "",
) -> None:
    """Create a console user (the password is read from standard input without --password)."""
    secret = password if password is not None else _read_password()
    try:
        user_in = UserCreate(
            username=username, password=secret, role=role, display_name=display_name
        )
    except ValidationError as exc:
        fields = ", ".join(str(error["loc"][0]) for error in exc.errors() if error["loc"])
        raise InvalidInputError(
            N_("Invalid user: {fields}"),
            hint=N_(
                "User names use letters, digits and . _ @ -; passwords have at least 8 characters."
            ),
            fields=fields,
        ) from None
    database = _database()
    try:
        with database.unit_of_work() as session:
            user = service.create(db_session=session, user_in=user_in)
            name, chosen = user.username, user.role
    finally:
        database.dispose()
    console.print(_("User {username} created with role {role}").format(username=name, role=chosen))


@users_app.command("list")
@handle_errors
def list_users(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the console users."""
    database = _database()
    try:
        with database.unit_of_work() as session:
            users = [UserRead.model_validate(u) for u in service.list_users(db_session=session)]
    finally:
        database.dispose()
    if as_json:
        console.print_json(json.dumps([u.model_dump(mode="json") for u in users]))
        return
    if not users:
        err_console.print(_("No users yet: create one with `siyu users create`."))
        return
    table = Table(title=_("Users"))
    for header in (_("User name"), _("Name"), _("Role"), _("Active"), _("Last login")):
        table.add_column(header)
    for user in users:
        table.add_row(
            user.username,
            user.display_name,
            _(service.ROLE_LABELS[user.role]),
            _("yes") if user.is_active else _("no"),
            user.last_login_at.strftime("%Y-%m-%d %H:%M") if user.last_login_at else "-",
        )
    console.print(table)
