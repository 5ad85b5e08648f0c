"""The ``siyu`` command: version, settings, migrations, and clear errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from click.testing import Result
from typer.testing import CliRunner

from siyu import __version__
from siyu.cli import app, handle_errors
from siyu.core.i18n import use_locale
from siyu.events import open_event_store

runner = CliRunner()


def run(*args: str, home: Path, **env: str) -> Result:
    return runner.invoke(app, list(args), env={"SIYU_HOME": str(home), **env})


def flat(text: str) -> str:
    """``text`` without whitespace: rich wraps long lines (anywhere in Chinese)."""
    return "".join(text.split())


def assert_clean_failure(result: Result, *expected: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for text in expected:
        assert flat(text) in flat(result.output)


def test_version(tmp_path: Path) -> None:
    result = run("--version", home=tmp_path)
    assert result.exit_code == 0
    assert result.output.strip() == f"siyu {__version__}"


def test_python_dash_m_runs_the_same_command() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "siyu", "--version"], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0
    assert completed.stdout.strip() == f"siyu {__version__}"


def test_help_lists_the_command_groups(tmp_path: Path) -> None:
    result = run("--help", home=tmp_path)
    assert result.exit_code == 0
    for group in ("db", "config", "demo", "serve"):
        assert group in result.output


def test_config_show_json_hides_the_secret(tmp_path: Path) -> None:
    secret = "x" * 48
    result = run(
        "config",
        "show",
        "--json",
        home=tmp_path,
        SIYU_SECRET_KEY=secret,
        SIYU_DATABASE_URL="postgresql://ops:pa55word@db.example/siyu",
    )

    assert result.exit_code == 0, result.output
    view = json.loads(result.output)
    assert view["SIYU_HOME"] == str(tmp_path.resolve())
    assert view["SIYU_LANG"] == "zh-CN"
    assert view["SIYU_DATABASE_URL"] == "postgresql://ops:******@db.example/siyu"
    assert secret not in result.output
    assert "pa55word" not in result.output


def test_config_show_table(tmp_path: Path) -> None:
    result = run("config", "show", home=tmp_path, SIYU_LANG="en")
    assert result.exit_code == 0
    assert "Effective settings" in result.output
    assert "SIYU_TIMEZONE" in result.output
    assert "Asia/Shanghai" in result.output


def test_db_upgrade_then_status(tmp_path: Path) -> None:
    before = run("db", "status", home=tmp_path, SIYU_LANG="en")
    assert before.exit_code == 0, before.output
    assert "current: -" in before.output

    upgraded = run("db", "upgrade", home=tmp_path, SIYU_LANG="en")
    assert upgraded.exit_code == 0, upgraded.output
    assert "Database is at revision 0002,0003,0004,0005,0006,0007,0008,0009" in upgraded.output
    assert (tmp_path / "siyu.db").exists()

    after = run("db", "status", home=tmp_path, SIYU_LANG="en")
    assert after.exit_code == 0
    shown = " ".join(after.output.split())  # the terminal may wrap the line
    assert "current: 0002,0003,0004,0005,0006,0007,0008,0009" in shown
    assert "latest: 0002,0003,0004,0005,0006,0007,0008,0009" in shown


def test_db_status_speaks_chinese_by_default(tmp_path: Path) -> None:
    run("db", "upgrade", home=tmp_path)
    result = run("db", "status", home=tmp_path)
    assert result.exit_code == 0
    assert "当前版本" in result.output


@pytest.mark.postgres
def test_db_upgrade_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    upgraded = run("db", "upgrade", home=tmp_path, SIYU_DATABASE_URL=pg_url, SIYU_LANG="en")
    assert upgraded.exit_code == 0, upgraded.output
    status = run("db", "status", home=tmp_path, SIYU_DATABASE_URL=pg_url, SIYU_LANG="en")
    assert "current: 0002,0003,0004,0005,0006,0007,0008,0009" in status.output


def test_a_bad_setting_exits_2_naming_it(tmp_path: Path) -> None:
    result = run("db", "status", home=tmp_path, SIYU_LANG="fr")
    assert_clean_failure(result, "SIYU_LANG", "'fr'")


def test_a_bad_setting_gives_message_and_hint(tmp_path: Path) -> None:
    # Settings failed to load, so the message is in the default language, zh-CN.
    result = run("config", "show", home=tmp_path, SIYU_TIMEZONE="Mars/Base")
    assert_clean_failure(
        result,
        "错误:",
        "配置项 SIYU_TIMEZONE 无效",
        "未知时区 'Mars/Base'",
        "处理建议:",
        "请修正或删除该环境变量",
    )


def test_an_unreachable_database_exits_2_naming_the_setting(tmp_path: Path) -> None:
    result = run(
        "db",
        "upgrade",
        home=tmp_path,
        SIYU_LANG="en",
        SIYU_DATABASE_URL="postgresql://nobody@127.0.0.1:1/x",
    )
    assert_clean_failure(
        result, "SIYU_DATABASE_URL", "127.0.0.1", "Check that the server is running"
    )


def test_an_unwritable_home_exits_2(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("a file, not a directory")
    result = run("db", "upgrade", home=blocker / "sub", SIYU_LANG="en")
    assert_clean_failure(result, "SIYU_HOME", str(blocker / "sub"))


def _corrupt_events_file(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "events.duckdb"
    path.write_bytes(b"this is not a duckdb database" * 1000)
    return path


def test_handle_errors_turns_an_event_store_error_into_a_message(tmp_path: Path) -> None:
    path = _corrupt_events_file(tmp_path)
    probe = typer.Typer()

    @probe.command()
    @handle_errors
    def count() -> None:
        with open_event_store(f"duckdb:///{path}") as events:
            typer.echo(events.count())

    with use_locale("en"):
        result = runner.invoke(probe, [])

    assert_clean_failure(result, f"file {path} is damaged or not a DuckDB file", "restore a backup")


def test_a_corrupt_events_file_stops_demo_generation_clearly(tmp_path: Path) -> None:
    path = _corrupt_events_file(tmp_path)
    result = run(
        "demo",
        "generate",
        "--people",
        "100",
        "--days",
        "30",
        "--json",
        home=tmp_path,
        SIYU_LANG="en",
    )
    assert_clean_failure(result, f"file {path} is damaged or not a DuckDB file")
