"""``siyu users create`` and ``siyu users list``."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from siyu.cli import app
from siyu.core.config import Settings
from siyu.privacy import service as users
from siyu.store import open_database
from siyu.store.migrate import upgrade

runner = CliRunner()


def _env(settings: Settings) -> dict[str, str]:
    return {"SIYU_HOME": str(settings.home_dir), "SIYU_LANG": "en"}


def test_create_and_list_users(settings: Settings) -> None:
    database = open_database(settings.resolved_database_url)
    upgrade(database)
    env = _env(settings)
    made = runner.invoke(
        app,
        ["users", "create", "--username", "ana", "--role", "analyst", "--password", "s3cret-pass"],
        env=env,
    )
    assert made.exit_code == 0, made.output
    assert "ana" in made.output
    piped = runner.invoke(
        app,
        ["users", "create", "--username", "audrey", "--role", "auditor"],
        input="from-stdin-pass\n",
        env=env,
    )
    assert piped.exit_code == 0, piped.output
    with database.unit_of_work() as session:
        user = users.authenticate(db_session=session, username="audrey", password="from-stdin-pass")
        assert user.role == "auditor"
    database.dispose()

    listed = runner.invoke(app, ["users", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [(r["username"], r["role"]) for r in rows] == [("ana", "analyst"), ("audrey", "auditor")]
    table = runner.invoke(app, ["users", "list"], env=env)
    assert "audrey" in table.output and "Auditor" in table.output


def test_refusals_are_clear(settings: Settings) -> None:
    database = open_database(settings.resolved_database_url)
    upgrade(database)
    database.dispose()
    env = _env(settings)
    args = ["users", "create", "--username", "ana", "--role", "operator", "--password"]
    assert runner.invoke(app, [*args, "long-enough"], env=env).exit_code == 0
    again = runner.invoke(app, [*args, "long-enough"], env=env)
    assert again.exit_code == 2 and "already exists" in again.output
    short = runner.invoke(
        app,
        ["users", "create", "--username", "bo", "--role", "operator", "--password", "x"],
        env=env,
    )
    assert short.exit_code == 2 and "8 characters" in short.output
    role = runner.invoke(
        app,
        ["users", "create", "--username", "cy", "--role", "boss", "--password", "long-enough"],
        env=env,
    )
    assert role.exit_code != 0
