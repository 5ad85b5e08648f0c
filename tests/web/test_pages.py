"""The console's pages answer, in Chinese by default and in English on request."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient

from siyu.api import create_app
from siyu.core.config import Settings
from tests.web.conftest import admin_password, sign_in

Console = Callable[[str | None], TestClient]


def _person_ids(html: str) -> list[str]:
    return re.findall(r'href="/people/(p_[0-9a-z]+)"', html)


def test_overview_in_chinese_with_every_panel(console: Console) -> None:
    answer = console("admin").get("/")
    assert answer.status_code == 200
    html = answer.text
    assert '<html lang="zh-CN">' in html
    assert "累计人数" in html  # a metric label from the zh-CN catalog
    assert "数据概览" in html  # the navigation
    assert html.count('class="card metric"') >= 10
    assert '<svg class="spark"' in html
    assert 'data-chart="bar"' in html and 'data-chart="pyramid"' in html
    assert 'data-chart="pie"' in html
    assert "重要价值客户" in html or "一般价值客户" in html  # RFM shares
    assert "普通" in html  # a tier name from the scheme
    assert 'href="/people"' in html and 'href="/"' in html
    assert "Content-Security-Policy" in answer.headers
    assert answer.headers["Cache-Control"] == "no-store"
    assert "Traceback" not in html


def test_overview_filters_reload_the_panels(console: Console) -> None:
    client = console("admin")
    partial = client.get(
        "/", params={"days": "7", "channel": "wecom"}, headers={"HX-Request": "true"}
    )
    assert partial.status_code == 200
    assert partial.text.lstrip().startswith('<div id="overview-panels"')
    assert "<html" not in partial.text
    assert "2026-05-25" in partial.text  # seven days ending on the last day of data
    custom = client.get("/", params={"from": "2026-05-01", "to": "2026-05-10"})
    assert "2026-05-01" in custom.text and "2026-05-10" in custom.text
    # Nonsense falls back to the default period instead of failing.
    assert client.get("/", params={"days": "abc", "from": "x", "channel": "<b>"}).status_code == 200


def test_english_switch(console: Console) -> None:
    client = console("admin")
    answer = client.get("/lang/en", params={"next": "/people"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/people"
    html = client.get("/").text
    assert '<html lang="en">' in html
    assert "Total people" in html and "累计人数" not in html
    client.get("/lang/zh-CN")
    assert '<html lang="zh-CN">' in client.get("/").text


def test_people_search_and_pagination(console: Console) -> None:
    client = console("admin")
    first = client.get("/people")
    assert first.status_code == 200
    ids = _person_ids(first.text)
    assert len(ids) == 20
    second = client.get("/people", params={"page": "2"})
    assert not set(_person_ids(second.text)) & set(ids)
    by_id = client.get("/people", params={"q": ids[3]})
    assert _person_ids(by_id.text) == [ids[3]]
    partial = client.get("/people", params={"q": ids[3]}, headers={"HX-Request": "true"})
    assert partial.text.lstrip().startswith('<div id="results"')


def test_search_by_name_and_identifier(console: Console) -> None:
    client = console("admin")
    profile = None
    for person_id in _person_ids(client.get("/people").text):
        html = client.get(f"/people/{person_id}").text
        if "member_no" in html and '<h2 class="person-name">(' not in html:
            profile = (person_id, html)
            break
    assert profile is not None
    person_id, html = profile
    name = re.search(r'<h2 class="person-name">([^<]+)</h2>', html)
    member = re.search(r'<td>member_no</td><td><code class="identifier">([^<]+)</code>', html)
    assert name and member
    assert person_id in _person_ids(client.get("/people", params={"q": name.group(1)[:2]}).text)
    found = client.get("/people", params={"q": f"member_no:{member.group(1)}"})
    assert _person_ids(found.text) == [person_id]
    nobody = client.get("/people", params={"q": "phone:13000000000"})
    assert "Nobody matches" in nobody.text or "没有" in nobody.text
    bad = client.get("/people", params={"q": "shoe:size"})
    assert bad.status_code == 200 and 'class="notice error"' in bad.text


def test_profile_360(console: Console) -> None:
    client = console("admin")
    ids = _person_ids(client.get("/people").text)
    html = ""
    for person_id in ids:
        html = client.get(f"/people/{person_id}").text
        if "order_paid" in html:
            break
    for section in (
        "h-ids", "h-traits", "h-tier", "h-consent", "h-orders", "h-messages", "h-tags",
        "h-timeline",
    ):  # fmt: skip
        assert f'id="{section}"' in html
    assert 'class="event ev-' in html
    assert "initial" in html  # the tier history's first assignment
    # Why a tag has its value: the tag links to its page and says how it is computed.
    assert 'href="/tags/orders_count_365d"' in html
    assert (
        "order_paid" in re.search(r'title="[^"]*"><dt><a href="/tags/orders_count_365d"', html)[0]
    )
    timeline = client.get(
        f"/people/{person_id}/timeline",
        params={"name": "order_paid"},
        headers={"HX-Request": "true"},
    )
    assert timeline.status_code == 200
    names = set(re.findall(r'<strong class="event-name">([a-z_]+)</strong>', timeline.text))
    assert names == {"order_paid"}


def test_unknown_person_is_a_page_not_a_stack_trace(console: Console) -> None:
    answer = console("admin").get("/people/p_nobody")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert 'class="notice error"' in answer.text and "Traceback" not in answer.text


def test_empty_states_say_what_to_do(empty: Settings) -> None:
    with TestClient(create_app(empty)) as client:
        sign_in(client, "admin", admin_password(empty))
        overview = client.get("/")
        assert overview.status_code == 200
        assert "siyu demo" in overview.text
        assert "siyu tiers evaluate" in overview.text
        assert "siyu tags refresh" in overview.text
        people = client.get("/people")
        assert people.status_code == 200 and "siyu demo" in people.text


def test_static_files_are_cached(console: Console) -> None:
    client = console(None)
    own = client.get("/static/css/console.css")
    assert own.status_code == 200 and own.headers["Cache-Control"] == "public, max-age=3600"
    vendor = client.get("/static/vendor/htmx/htmx.min.js")
    assert vendor.status_code == 200 and "immutable" in vendor.headers["Cache-Control"]
    assert client.get("/static/vendor/echarts/echarts.min.js").status_code == 200
    assert client.get("/docs").status_code == 200
