"""The tag, segment and tier pages: the tag library and a tag's page with its refresh, the
rule builder's live count and save, a segment's page, tier counts and the movement matrix;
roles, empty states and bad input shown in the page."""

from __future__ import annotations

import html as htmlmod
import json
import re
import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from siyu.api import create_app
from siyu.core.config import Settings
from siyu.privacy import service as users
from siyu.privacy.models import Role, UserCreate
from siyu.store import open_database
from tests.web.conftest import PASSWORD, admin_password, csrf_of, sign_in

Console = Callable[[str | None], TestClient]
# Members of an RFM group who paid at least once in the year before the demo's last day.
RULE = {
    "and": [
        {"tag": "rfm_segment", "op": "is not null"},
        {"event": "order_paid", "window": {"since": "2025-06-01"}, "op": ">=", "value": 1},
    ]
}


def _tag_keys(html: str) -> list[str]:
    return re.findall(r'<a class="tag-link" href="/tags/([a-z0-9_]+)"', html)


def _preview(client: TestClient, rule: object) -> TestClient:
    token = csrf_of(client.get("/segments/new").text)
    text = rule if isinstance(rule, str) else json.dumps(rule)
    return client.post(  # type: ignore[return-value]
        "/segments/preview",
        data={"csrf_token": token, "rule": text},
        headers={"HX-Request": "true"},
    )


@pytest.fixture
def analyst(brand: Settings) -> Iterator[TestClient]:
    """A client signed in as an analyst (may look, may not change)."""
    database = open_database(brand.resolved_database_url)
    try:
        with database.unit_of_work() as session:
            users.create(
                db_session=session,
                user_in=UserCreate(username="ada", password=PASSWORD, role=Role.analyst),
            )
    finally:
        database.dispose()
    with TestClient(create_app(brand), raise_server_exceptions=False) as client:
        assert sign_in(client, "ada", PASSWORD).status_code == 303  # type: ignore[attr-defined]
        yield client


def test_tag_library_by_category_with_search_and_pages(console: Console) -> None:
    client = console("admin")
    answer = client.get("/tags")
    assert answer.status_code == 200
    html = answer.text
    assert "标签" in html and 'href="/segments"' in html  # both new navigation links
    assert 'aria-current="page">标签' in html
    assert "性别" in html and "基础" in html  # a basic tag's Chinese name, its category
    first = _tag_keys(html)
    assert len(first) == 25
    second = _tag_keys(client.get("/tags", params={"page": "2"}).text)
    assert second and not set(first) & set(second)
    found = client.get("/tags", params={"q": "rfm"}, headers={"HX-Request": "true"})
    assert found.text.lstrip().startswith('<div id="results"')
    assert "rfm_segment" in _tag_keys(found.text)
    risk = client.get("/tags", params={"category": "risk"}).text
    assert _tag_keys(risk) and "rfm_segment" not in _tag_keys(risk)
    nothing = client.get("/tags", params={"q": "no-such-tag"})
    assert nothing.status_code == 200 and 'class="notice empty"' in nothing.text
    assert client.get("/tags", params={"sort": "bogus", "page": "x"}).status_code == 200


def test_tag_page_definition_coverage_chart_and_versions(console: Console) -> None:
    client = console("admin")
    html = client.get("/tags/rfm_segment").text
    for section in ("h-definition", "h-coverage", "h-refresh", "h-versions"):
        assert f'id="{section}"' in html
    assert re.search(r'data-chart="(pie|bar)" data-series="\[', html)
    assert "v1" in html and "刷新该标签" in html
    number = client.get("/tags/net_amount_365d").text
    assert 'data-chart="bar"' in number and "<table" in number
    missing = client.get("/tags/no_such_tag")
    assert missing.status_code == 404 and 'class="notice error"' in missing.text
    assert "Traceback" not in missing.text


def test_refresh_queues_a_run_and_reports_its_progress(console: Console) -> None:
    client = console("olivia")  # an operator may refresh
    token = csrf_of(client.get("/tags/gender").text)
    refused = client.post(
        "/tags/refresh",
        data={"csrf_token": "forged", "tag": "gender"},
        headers={"HX-Request": "true"},
    )
    assert 'class="notice error"' in refused.text
    started = client.post(
        "/tags/refresh", data={"csrf_token": token, "tag": "gender"}, headers={"HX-Request": "true"}
    )
    assert started.status_code == 200
    run = re.search(r'hx-get="/tags/refreshes/(\d+)" hx-trigger="every 1s"', started.text)
    assert run, started.text
    deadline = time.monotonic() + 60
    status = ""
    while time.monotonic() < deadline:
        panel = client.get(f"/tags/refreshes/{run.group(1)}", headers={"HX-Request": "true"}).text
        status = re.search(r'data-status="(\w*)"', panel).group(1)  # type: ignore[union-attr]
        if status in ("done", "failed"):
            break
        assert 'hx-trigger="every 1s"' in panel  # still polling
        time.sleep(0.2)
    assert status == "done"
    assert 'hx-trigger="every 1s"' not in panel  # polling stops


def test_builder_counts_like_the_api_and_masks_the_sample(console: Console) -> None:
    client = console("olivia")
    page = client.get("/segments/new")
    assert page.status_code == 200
    assert 'id="builder"' in page.text and "/static/js/segment-builder.js" in page.text
    catalog = json.loads(
        re.search(r'data-catalog="([^"]+)"', page.text).group(1).replace("&#34;", '"')  # type: ignore[union-attr]
    )
    assert "order_paid" in catalog["events"] and catalog["tags"] and catalog["traits"]
    preview = _preview(client, RULE)
    count = int(re.search(r'data-count="(\d+)"', preview.text).group(1))  # type: ignore[union-attr]
    api = client.post("/v1/segments/count", json={"rule": RULE}).json()
    assert count == api["count"] > 0
    assert "tag.rfm_segment is not null" in preview.text  # the rule read back as text
    assert "/people/p_" in preview.text and "*" in preview.text  # sample, identifiers masked


def test_an_invalid_rule_is_an_error_in_the_page(console: Console) -> None:
    client = console("admin")
    for rule in ("{not json", {"tag": "no_such_tag", "op": "=", "value": 1}, {"bogus": 1}):
        answer = _preview(client, rule)
        assert answer.status_code == 200
        assert 'class="notice error"' in answer.text and "Traceback" not in answer.text
    typed = _preview(client, {"tag": "rfm_segment", "op": ">", "value": 3})
    assert 'class="notice error"' in typed.text
    empty = _preview(client, "")
    assert 'class="notice error"' not in empty.text and "data-count" not in empty.text


def test_save_a_segment_then_its_page_and_evaluation(console: Console) -> None:
    client = console("admin")
    token = csrf_of(client.get("/segments/new").text)
    form = {"csrf_token": token, "key": "recent_rfm", "name": "近期购买", "rule": json.dumps(RULE)}
    saved = client.post("/segments", data=form, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/segments/recent_rfm"
    api = client.post("/v1/segments/count", json={"rule": RULE}).json()["count"]
    html = client.get("/segments/recent_rfm").text
    assert f'<dd id="segment-count">{api:,}</dd>' in html
    assert 'href="/v1/segments/recent_rfm/export"' in html
    assert "Not evaluated yet" in html or "siyu segments evaluate" in html
    evaluated = client.post(
        "/segments/recent_rfm/evaluate", data={"csrf_token": token}, follow_redirects=True
    )
    assert evaluated.status_code == 200 and f"+{api:,}" in evaluated.text
    listed = client.get("/segments", params={"q": "近期"}).text
    assert 'href="/segments/recent_rfm"' in listed
    assert "recent_rfm" not in client.get("/segments", params={"status": "archived"}).text
    again = client.post("/segments", data=form)
    assert again.status_code == 409 and 'class="notice error"' in again.text
    assert "rfm_segment" in again.text  # the rule is kept for the builder
    bad = client.post("/segments", data={**form, "key": "Bad Key"})
    assert bad.status_code == 422 and 'class="notice error"' in bad.text
    changes = client.get(
        "/segments/recent_rfm", params={"change": "entered"}, headers={"HX-Request": "true"}
    )
    assert changes.text.lstrip().startswith('<div id="changes"')
    assert client.get("/segments/nope").status_code == 404
    # Archive, then undo it.
    archived = client.post(
        "/segments/recent_rfm/archive", data={"csrf_token": token}, follow_redirects=True
    )
    assert archived.status_code == 200 and 'action="/segments/recent_rfm/restore"' in archived.text
    assert "recent_rfm" in client.get("/segments", params={"status": "archived"}).text
    restored = client.post(
        "/segments/recent_rfm/restore", data={"csrf_token": token}, follow_redirects=True
    )
    assert 'action="/segments/recent_rfm/archive"' in restored.text
    assert (
        client.post("/segments/recent_rfm/explode", data={"csrf_token": token}).status_code == 404
    )
    assert client.post("/segments/recent_rfm/archive", data={"csrf_token": "x"}).status_code == 403


def test_tiers_counts_rules_and_movement(console: Console) -> None:
    client = console("admin")
    html = client.get("/tiers").text
    assert "普通" in html and "会员分层" in html  # a tier name, the tab
    assert 'data-chart="pyramid"' in html and "net_amount_365d" in html  # counts, rules
    assert 'class="list compact matrix"' in html
    assert "2026-05-31" in html  # the movement ends on the last day with data
    partial = client.get(
        "/tiers", params={"from": "2026-05-01", "to": "2026-05-31"}, headers={"HX-Request": "true"}
    )
    assert partial.text.lstrip().startswith('<div id="movement"')
    before = client.get("/tiers", params={"from": "2020-01-01", "to": "2020-02-01"}).text
    assert 'class="notice empty"' in before
    assert client.get("/tiers", params={"from": "junk", "to": "2026-13-01"}).status_code == 200


def test_an_analyst_may_look_but_not_change(analyst: TestClient) -> None:
    html = analyst.get("/tags").text
    assert "Refresh all tags" not in html and 'action="/tags/refresh"' not in html
    token = csrf_of(html)
    refused = analyst.post("/tags/refresh", data={"csrf_token": token})
    assert refused.status_code == 403 and 'class="notice error"' in refused.text
    assert 'id="save-segment"' not in analyst.get("/segments/new").text
    assert "data-count" in _preview(analyst, RULE).text  # counting is allowed
    save = analyst.post(
        "/segments",
        data={"csrf_token": token, "key": "mine", "name": "x", "rule": json.dumps(RULE)},
    )
    assert save.status_code == 403
    assert analyst.get("/tiers").status_code == 200


def test_empty_brand_says_what_to_do(empty: Settings) -> None:
    with TestClient(create_app(empty)) as client:
        sign_in(client, "admin", admin_password(empty))
        tags = client.get("/tags")
        assert tags.status_code == 200 and "siyu tags refresh" in tags.text
        segments = client.get("/segments")
        assert segments.status_code == 200 and "siyu segments create" in segments.text
        tiers = client.get("/tiers")
        assert tiers.status_code == 200 and "siyu tiers evaluate" in tiers.text
        assert client.get("/segments/new").status_code == 200


def test_edit_a_tag_definition_in_the_page(console: Console, analyst: TestClient) -> None:
    client = console("admin")
    html = client.get("/tags/orders_count_30d").text
    token = csrf_of(html)
    text = re.search(r'<textarea name="definition"[^>]*>(.*?)</textarea>', html, re.S)
    assert text, "no editor for an admin"
    original = htmlmod.unescape(text.group(1))
    edited = original.replace("name_zh:", "name_zh: 近30天下单次数（改） #", 1)
    saved = client.post(
        "/tags/orders_count_30d/edit",
        data={"csrf_token": token, "definition": edited},
        follow_redirects=True,
    )
    assert saved.status_code == 200 and "近30天下单次数（改）" in saved.text
    versions = client.get("/v1/tags/orders_count_30d/versions").json()
    assert max(v["version"] for v in versions) >= 2
    broken = client.post(
        "/tags/orders_count_30d/edit", data={"csrf_token": token, "definition": "key: [oops"}
    )
    assert broken.status_code == 422 and 'role="alert"' in broken.text
    assert "key: [oops" in broken.text  # the text is kept to fix it
    other = client.post(
        "/tags/orders_count_30d/edit",
        data={"csrf_token": token, "definition": edited.replace("orders_count_30d", "x_1")},
    )
    assert other.status_code == 422
    looked = analyst.get("/tags/orders_count_30d").text
    assert 'name="definition"' not in looked  # analysts read the YAML, they do not edit it
    refused = analyst.post(
        "/tags/orders_count_30d/edit",
        data={"csrf_token": csrf_of(looked), "definition": edited},
    )
    assert refused.status_code == 403
    back = client.post(  # the brand is shared with other tests: put the definition back
        "/tags/orders_count_30d/edit", data={"csrf_token": token, "definition": original}
    )
    assert back.status_code == 200 and "（改）" not in back.text
