"""Signing in and out: passwords, CSRF, lockout, sessions, and what each role may see."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient

from siyu.core.config import Settings
from siyu.web.auth import CSRF_COOKIE, SESSION_COOKIE, LoginThrottle
from tests.web.conftest import admin_password, csrf_of, sign_in

Console = Callable[[str | None], TestClient]


def test_pages_need_a_sign_in(console: Console) -> None:
    client = console(None)
    answer = client.get("/people?q=x", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fpeople%3Fq%3Dx"
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    htmx = client.get("/people", headers={"HX-Request": "true"}, follow_redirects=False)
    assert htmx.headers["HX-Redirect"].startswith("/login")


def test_sign_in_goes_back_where_the_user_was(brand: Settings, console: Console) -> None:
    client = console(None)
    answer = sign_in(client, "admin", admin_password(brand), "/people?q=x")
    assert answer.status_code == 303  # type: ignore[attr-defined]
    assert answer.headers["location"] == "/people?q=x"  # type: ignore[attr-defined]
    assert SESSION_COOKIE in client.cookies
    # Never to another site.
    client.cookies.clear()
    answer = sign_in(client, "admin", admin_password(brand), "//evil.example/x")
    assert answer.headers["location"] == "/"  # type: ignore[attr-defined]


def test_wrong_password_is_refused_without_a_session(console: Console) -> None:
    client = console(None)
    answer = sign_in(client, "admin", "not-the-password")
    assert answer.status_code == 401  # type: ignore[attr-defined]
    assert "Wrong user name or password" in answer.text or "用户名或密码错误" in answer.text  # type: ignore[attr-defined]
    assert SESSION_COOKIE not in client.cookies
    assert sign_in(client, "nobody", "whatever1").status_code == 401  # type: ignore[attr-defined]


def test_forms_without_a_valid_csrf_token_are_refused(brand: Settings, console: Console) -> None:
    client = console(None)
    client.get("/login")
    data = {"username": "admin", "password": admin_password(brand), "next": "/"}
    assert client.post("/login", data=data, follow_redirects=False).status_code == 403
    forged = {**data, "csrf_token": "forged"}
    assert client.post("/login", data=forged, follow_redirects=False).status_code == 403
    # A token is bound to the browser's own CSRF cookie.
    token = csrf_of(client.get("/login").text)
    client.cookies.set(CSRF_COOKIE, "planted-by-a-neighbour")
    good = {**data, "csrf_token": token}
    assert client.post("/login", data=good, follow_redirects=False).status_code == 403
    assert SESSION_COOKIE not in client.cookies

    signed_in = console("admin")
    assert signed_in.post("/logout", follow_redirects=False).status_code == 403
    assert signed_in.get("/", follow_redirects=False).status_code == 200


def test_logout_ends_the_session(console: Console) -> None:
    client = console("admin")
    token = csrf_of(client.get("/").text)
    answer = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


def test_a_tampered_session_is_ignored(console: Console) -> None:
    client = console("admin")
    value = client.cookies[SESSION_COOKIE]
    body, mac = value.split(".")
    client.cookies.set(SESSION_COOKIE, f"{body}.{mac[:-2]}xx")
    assert client.get("/", follow_redirects=False).status_code == 303


def test_repeated_failures_lock_the_account(brand: Settings, console: Console) -> None:
    client = console(None)
    for _ in range(5):
        assert sign_in(client, "admin", "wrong-password").status_code == 401  # type: ignore[attr-defined]
    locked = sign_in(client, "admin", admin_password(brand))
    assert locked.status_code == 429  # type: ignore[attr-defined]
    assert SESSION_COOKIE not in client.cookies


def test_throttle_forgets_after_the_lockout() -> None:
    throttle = LoginThrottle(limit=3, window=60, lockout=300)
    keys = throttle.keys("Admin", "10.0.0.1")
    for moment in (0.0, 1.0):
        throttle.failed(keys, now=moment)
    assert throttle.locked_for(keys, now=2.0) == 0
    throttle.failed(keys, now=2.0)
    assert throttle.locked_for(keys, now=3.0) == 299
    assert throttle.locked_for(throttle.keys("admin", "10.0.0.2"), now=3.0) == 299  # same user
    assert throttle.locked_for(keys, now=303.0) == 0
    # Failures spread beyond the window do not add up.
    for moment in (400.0, 500.0, 600.0):
        throttle.failed(keys, now=moment)
    assert throttle.locked_for(keys, now=601.0) == 0


PHONE = re.compile(r'<code class="identifier">(\d{11})</code>')
MASKED = re.compile(r'<code class="identifier">(\d{3}\*{4}\d{4})</code>')


def _someone_with_a_phone(client: TestClient) -> str:
    listing = client.get("/people").text
    for row in listing.split("<tr>")[2:]:
        person = re.search(r'href="/people/(p_[0-9a-z]+)"', row)
        if person and "phone:" in row:
            return person.group(1)
    raise AssertionError("nobody with a phone number on the first page")


def test_only_the_admin_sees_phone_numbers(console: Console) -> None:
    operator = console("olivia")
    person_id = _someone_with_a_phone(operator)
    masked = operator.get(f"/people/{person_id}").text
    assert MASKED.search(masked) and not PHONE.search(masked)
    assert "operator" in masked  # the role is shown in the top bar
    listing = operator.get("/people").text
    assert re.search(r"phone:\d{3}\*{4}\d{4}", listing)

    admin = console("admin")
    clear = admin.get(f"/people/{person_id}").text
    phone = PHONE.search(clear)
    assert phone is not None
    # The admin can find the person by the full number; the operator by it too (the number
    # is what they were told), though the page shows it masked.
    found = admin.get("/people", params={"q": phone.group(1)}).text
    assert f"/people/{person_id}" in found
