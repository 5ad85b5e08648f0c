"""``siyu webhooks``: add, list (secrets masked), remove."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from siyu.cli import app
from tests.collect.webhooks.conftest import CUSTOM_MAPPING

runner = CliRunner()
TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
SECRET = "shop-secret-abcdefghijklmnop"


def run(home: Path, *args: str) -> Result:
    return runner.invoke(
        app, list(args), env={"SIYU_HOME": str(home), "SIYU_LANG": "en", "COLUMNS": "200"}
    )


def test_add_list_remove_without_showing_secrets(tmp_path: Path) -> None:
    assert run(tmp_path, "db", "upgrade").exit_code == 0
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(CUSTOM_MAPPING))

    added = [
        run(
            tmp_path,
            "webhooks",
            "add-wecom",
            "--name",
            "wecom",
            "--corp-id",
            "ww1",
            "--token",
            TOKEN,
            "--aes-key",
            AES_KEY,
        ),
        run(
            tmp_path,
            "webhooks",
            "add-order",
            "--name",
            "shop",
            "--secret",
            SECRET,
            "--preset",
            "shopify",
        ),
        run(
            tmp_path,
            "webhooks",
            "add-order",
            "--name",
            "custom",
            "--secret",
            SECRET,
            "--mapping",
            str(mapping),
        ),
    ]
    for result in added:
        assert result.exit_code == 0, result.output
        assert "/v1/webhooks/" in result.output
    listed = run(tmp_path, "webhooks", "list", "--json")
    table = run(tmp_path, "webhooks", "list")

    assert listed.exit_code == table.exit_code == 0
    endpoints = json.loads(listed.output)
    assert [e["name"] for e in endpoints] == ["wecom", "shop", "custom"]
    assert endpoints[0]["path"] == f"/v1/webhooks/wecom/{endpoints[0]['id']}"
    assert endpoints[1]["field_mapping"]["signature"] == "shopify"
    for output in (listed.output, table.output, *(r.output for r in added)):
        for secret in (TOKEN, AES_KEY, SECRET):
            assert secret not in output

    removed = run(tmp_path, "webhooks", "remove", endpoints[0]["id"])
    assert removed.exit_code == 0
    assert len(json.loads(run(tmp_path, "webhooks", "list", "--json").output)) == 2


def test_generated_secret_is_shown_once(tmp_path: Path) -> None:
    run(tmp_path, "db", "upgrade")
    result = run(tmp_path, "webhooks", "add-order", "--name", "yz", "--preset", "youzan")
    assert result.exit_code == 0, result.output
    assert "shown only now" in result.output


def test_bad_input_is_a_clean_error(tmp_path: Path) -> None:
    run(tmp_path, "db", "upgrade")
    bad_key = run(
        tmp_path,
        "webhooks",
        "add-wecom",
        "--name",
        "w",
        "--corp-id",
        "c",
        "--token",
        "t",
        "--aes-key",
        "short",
    )
    no_mapping = run(tmp_path, "webhooks", "add-order", "--name", "o")
    bad_preset = run(tmp_path, "webhooks", "add-order", "--name", "o", "--preset", "taobao")
    missing = run(tmp_path, "webhooks", "remove", "wh_nope")

    for result in (bad_key, no_mapping, bad_preset, missing):
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
    assert "taobao" in bad_preset.output
