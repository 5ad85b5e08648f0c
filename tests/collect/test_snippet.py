"""The tracking snippet (siyu/collect/static/siyu.js): served by the app, posting cross-origin
from a real headless Chromium, retrying without duplicates, and running in a mini-program
(Node with a fake ``wx``); plus the server side it relies on: CORS and ``writeKey`` in a body."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import siyu.collect
from tests.collect.snippet_servers import serving_app, serving_page, serving_proxy
from tests.collect.tracking import (
    World,
    basic,
    client,
    dead_letters,
    make_world,
    stored,
    stored_in,
    world,
)

__all__ = ["client", "world"]

SNIPPET = Path(siyu.collect.__file__).parent / "static" / "siyu.js"
CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}: run `make system-deps`"
)
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


# -- the server side ---------------------------------------------------------------------------


def test_the_snippet_is_served_with_caching_headers(client: TestClient) -> None:
    response = client.get("/v1/static/siyu.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert response.headers["cache-control"] == "public, max-age=3600"
    assert response.content == SNIPPET.read_bytes()
    assert b"SPDX-License-Identifier: Apache-2.0" in response.content[:400]
    etag = response.headers["etag"]
    again = client.get("/v1/static/siyu.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""


def test_the_snippet_stays_small() -> None:
    assert SNIPPET.stat().st_size < 12 * 1024


def test_tracking_endpoints_answer_cors_and_nothing_else_does(
    client: TestClient, world: World
) -> None:
    origin = {"Origin": "https://h5.brand.example"}
    preflight = client.options(
        "/v1/batch",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed
    assert "content-type" in allowed
    assert "POST" in preflight.headers["access-control-allow-methods"]

    body = {"batch": [{"type": "track", "messageId": "c-1", "anonymousId": "a-1", "event": "x"}]}
    posted = client.post("/v1/batch", json=body, headers={**origin, **world.auth})
    assert posted.status_code == 200
    assert posted.headers["access-control-allow-origin"] == "*"
    refused = client.post("/v1/track", json={}, headers=origin)  # the browser may read a 401
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == "*"

    assert "access-control-allow-origin" not in client.get("/healthz", headers=origin).headers
    other = client.options("/v1/people", headers={**origin, "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in other.headers


def test_a_write_key_in_the_body_authenticates_without_a_header(
    client: TestClient, world: World
) -> None:
    """What navigator.sendBeacon sends: text/plain, no Authorization, the key in the body."""
    beacon = {"Content-Type": "text/plain;charset=UTF-8"}

    def batch(message_id: str, **extra: Any) -> str:
        item = {"type": "track", "messageId": message_id, "anonymousId": "a-1", "event": "x"}
        return json.dumps({"batch": [item], "writeKey": world.key, **extra})

    ok = client.post("/v1/batch", content=batch("w-1"), headers=beacon)
    assert ok.status_code == 200
    assert ok.json()["accepted"] == 1

    wrong = json.dumps({"batch": [], "writeKey": "not-a-key"})
    assert client.post("/v1/batch", content=wrong, headers=beacon).status_code == 401
    assert client.post("/v1/batch", content=b"{not json", headers=beacon).status_code == 401
    # The header wins: a wrong header is not rescued by a right body key.
    rescued = client.post("/v1/batch", content=batch("w-2"), headers=basic("not-a-key"))
    assert rescued.status_code == 401
    # A single call may carry it too; a refused message is dead-lettered without the key.
    single = {"anonymousId": "a-1", "messageId": "w-3", "writeKey": world.key}
    assert client.post("/v1/track", json=single).status_code == 400  # no event name
    # A bad batch time refuses the whole body: it is dead-lettered without the key too.
    assert client.post("/v1/batch", content=batch("w-4", sentAt="soon")).status_code == 400

    assert [row["event_id"] for row in stored(client)] == ["w-1"]
    letters = dead_letters(world.settings)
    assert len(letters) == 2
    assert all(world.key not in letter.payload for letter in letters)


# -- a real browser ----------------------------------------------------------------------------


@pytest.fixture
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield browser
        finally:
            browser.close()


def _init(page: Any, key: str, endpoint: str, **options: Any) -> None:
    page.evaluate(
        "o => { siyu.init(o); }",
        {"writeKey": key, "endpoint": endpoint, "flushIntervalMs": 60_000, **options},
    )


def _wait_until_sent(page: Any) -> dict[str, int]:
    page.wait_for_function("() => siyu.stats().queued === 0", timeout=20_000)
    stats: dict[str, int] = page.evaluate("() => siyu.stats()")
    return stats


@pytest.mark.browser
@pytest.mark.slow
@needs_chromium
def test_h5_page_sends_cross_origin_and_keeps_its_anonymous_id(
    tmp_path: Path, chromium: Any
) -> None:
    world = make_world(tmp_path)
    with (
        serving_app(world.settings) as app_url,
        serving_proxy(app_url) as (proxy_url, proxy),
        serving_page(app_url) as page_url,
    ):
        page = chromium.new_page()
        page.goto(f"{page_url}/shop?utm_source=wecom&utm_medium=moments&utm_campaign=618")
        _init(page, world.key, proxy_url)
        first = page.evaluate(
            """async () => {
                siyu.identify('M001', {name: '张三'});
                siyu.track('Product Viewed', {sku: 'SKU-1', price: 99});
                siyu.page('商品页', {category: 'shop'});
                await siyu.flush();
                return {anonymousId: siyu.anonymousId(), stats: siyu.stats()};
            }"""
        )
        assert first["stats"]["queued"] == 0
        assert first["stats"]["sent"] == 3

        page.reload()
        _init(page, world.key, proxy_url)
        second = page.evaluate(
            "async () => { siyu.track('revisit'); await siyu.flush(); return siyu.anonymousId(); }"
        )
        assert second == first["anonymousId"]

        # Leaving the page hands the queue to sendBeacon (no header: the key is in the body).
        page.evaluate("() => siyu.track('leaving')")
        page.goto("about:blank")
        proxy.wait_for(lambda seen: not seen.authorization and seen.status == 200)
        page.close()
        beacons = [seen for seen in proxy.seen if not seen.authorization]
        assert beacons[0].content_type.startswith("text/plain")

    rows = {row["name"]: row for row in stored_in(world.settings)}
    assert sorted(rows) == ["identify", "leaving", "page_view", "product_view", "revisit"]
    for row in rows.values():
        assert row["anonymous_id"] == first["anonymousId"]
        assert row["user_id"] == "member_no:M001"
        assert row["channel"] == "web"
        assert (row["utm_source"], row["utm_medium"], row["utm_campaign"]) == (
            "wecom",
            "moments",
            "618",
        )
    assert json.loads(rows["identify"]["properties"]) == {"name": "张三"}
    assert rows["product_view"]["sku"] == "SKU-1"
    viewed = json.loads(rows["page_view"]["properties"])
    assert viewed["name"] == "商品页"
    assert viewed["title"] == "618 活动页"
    assert viewed["url"].startswith(f"{page_url}/shop?utm_source=wecom")


@pytest.mark.browser
@pytest.mark.slow
@needs_chromium
def test_transient_failures_are_retried_exactly_once_and_the_queue_survives_a_reload(
    tmp_path: Path, chromium: Any
) -> None:
    world = make_world(tmp_path)
    with (
        serving_app(world.settings) as app_url,
        # The first answer is lost after the app stored the batch; the second is a 503.
        serving_proxy(app_url, plan=["lose-ack", "drop"]) as (proxy_url, proxy),
        serving_page(app_url) as page_url,
    ):
        page = chromium.new_page()
        page.goto(f"{page_url}/")
        _init(page, world.key, proxy_url, retryBaseMs=50)
        page.evaluate("async () => { siyu.track('a'); siyu.track('b'); await siyu.flush(); }")
        stats = _wait_until_sent(page)
        assert stats["retries"] == 2
        assert stats["sent"] == 2
        answered = [seen.answer for seen in proxy.seen if seen.action == "pass"]
        assert answered[-1] is not None
        assert answered[-1]["duplicates"] == 2  # the lost-ack batch, sent again

        # Queued, never delivered (the beacon on reload fails too), sent after the reload.
        proxy.default = "drop"
        page.evaluate("() => siyu.track('queued')")
        assert page.evaluate("() => siyu.stats().queued") == 1
        page.reload()
        proxy.wait_for(lambda seen: not seen.authorization and seen.action == "drop")
        proxy.default = "pass"
        _init(page, world.key, proxy_url)
        assert _wait_until_sent(page)["sent"] == 1
        page.close()

    names = sorted(row["name"] for row in stored_in(world.settings))
    assert names == ["a", "b", "queued"]


# -- a mini-program ------------------------------------------------------------------------------

MINIPROGRAM = """
const http = require('http');
const storage = new Map();
delete globalThis.btoa;  // the mini-program runtime has none: use the snippet's own encoder
globalThis.wx = {
  getStorageSync: (key) => storage.has(key) ? storage.get(key) : '',
  setStorageSync: (key, value) => { storage.set(key, value); },
  getLaunchOptionsSync: () => ({
    scene: 1047, path: 'pages/index/index', query: {utm_source: 'qrcode'},
  }),
  onAppHide: () => {},
  request: ({url, method, data, header, success, fail}) => {
    const request = http.request(url, {method, headers: header}, (response) => {
      let text = '';
      response.on('data', (chunk) => { text += chunk; });
      response.on('end', () => success({statusCode: response.statusCode, data: JSON.parse(text)}));
    });
    request.on('error', fail);
    request.end(data);
  },
};
const [snippet, writeKey, endpoint] = process.argv.slice(2);
const siyu = require(snippet);
siyu.init({writeKey, endpoint});
siyu.identify('M002');
siyu.track('coupon_claim', {coupon: 'C1'});
siyu.flush().then(() => {
  console.log(JSON.stringify({anonymousId: siyu.anonymousId(), stats: siyu.stats()}));
  process.exit(0);
});
"""


@pytest.mark.slow
@needs_node
def test_the_snippet_runs_in_a_mini_program(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    script = tmp_path / "miniprogram.js"
    script.write_text(MINIPROGRAM)
    with serving_app(world.settings) as app_url:
        run = subprocess.run(
            ["node", str(script), str(SNIPPET), world.key, app_url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["stats"]["sent"] == 2

    rows = stored_in(world.settings)
    assert sorted(row["name"] for row in rows) == ["coupon_claim", "identify"]
    for row in rows:
        assert row["channel"] == "miniprogram"
        assert row["scene"] == "1047"
        assert row["utm_source"] == "qrcode"
        assert row["user_id"] == "member_no:M002"
        assert row["anonymous_id"] == result["anonymousId"]
