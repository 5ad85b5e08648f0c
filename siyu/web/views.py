"""Console routes: sign-in, language, overview, people and the 360° profile. Thin: each
parses its input, calls one flow or service, and renders one template."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from siyu.api.deps import Context, DbSession, get_event_store
from siyu.api.middleware import LANG_COOKIE
from siyu.core.config import secret_key
from siyu.core.errors import AuthenticationError, SiyuError
from siyu.core.i18n import SUPPORTED_LOCALES, gettext, normalize_locale
from siyu.core.logging import get_logger
from siyu.events import EventStore
from siyu.identity import service as identity
from siyu.identity.service import derive_hash_key
from siyu.privacy import service as users
from siyu.profiles import service as profiles
from siyu.web import flows
from siyu.web.auth import SESSION_COOKIE, SESSION_SECONDS, session_payload
from siyu.web.deps import (
    ConsoleUser,
    MaybeUser,
    SignerDep,
    User,
    csrf_ok,
    error_page,
    is_htmx,
    page,
    safe_next,
    throttle,
)

router = APIRouter(include_in_schema=False)
log = get_logger("web")
PEOPLE_PAGE = 20
TIMELINE_PAGE = 30
Text = Annotated[str, Query(max_length=200)]


# -- sign-in --------------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request, user: MaybeUser, sign: SignerDep, next: Text = "/") -> Response:
    if user is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return page(
        request, "login.html", {"next": safe_next(next), "error": None}, user=None, sign=sign
    )


@router.post("/login")
def login(
    request: Request,
    db_session: DbSession,
    sign: SignerDep,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    target = safe_next(next)

    def again(error: str, status_code: int) -> HTMLResponse:
        context = {"next": target, "error": error, "username": username}
        return page(request, "login.html", context, user=None, sign=sign, status_code=status_code)

    if not csrf_ok(request, sign, csrf_token):
        return again(gettext("The form expired; please sign in again."), 403)
    limiter = throttle(request)
    keys = limiter.keys(username, request.client.host if request.client else "?")
    wait = limiter.locked_for(keys)
    if wait > 0:
        message = gettext("Too many failed sign-ins; try again in {minutes} minutes.")
        return again(message.format(minutes=math.ceil(wait / 60)), 429)
    try:
        user = users.authenticate(db_session=db_session, username=username, password=password)
    except AuthenticationError:
        limiter.failed(keys)
        return again(gettext("Wrong user name or password"), 401)
    limiter.succeeded(keys)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        sign.sign(session_payload(user.id)),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    log.info("console sign-in: %s", user.username)
    return response


@router.post("/logout")
def logout(
    request: Request, sign: SignerDep, csrf_token: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    if not csrf_ok(request, sign, csrf_token):
        return Response(gettext("The form expired; reload the page."), status_code=403)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/lang/{code}")
def switch_language(code: str, next: Text = "/") -> Response:
    """Remember the console language in a cookie and go back."""
    locale = normalize_locale(code)
    response = RedirectResponse(safe_next(next), status_code=303)
    if locale in SUPPORTED_LOCALES:
        response.set_cookie(
            LANG_COOKIE, locale or "", max_age=365 * 86400, samesite="lax", path="/"
        )
    return response


# -- overview -------------------------------------------------------------------------------


@router.get("/")
def overview(
    request: Request,
    user: User,
    sign: SignerDep,
    context: Context,
    db_session: DbSession,
    days: Text = "",
    start: Annotated[str, Query(alias="from", max_length=10)] = "",
    end: Annotated[str, Query(alias="to", max_length=10)] = "",
    channel: Text = "",
) -> Response:
    filters = flows.OverviewFilters.parse(days, start, end, channel)
    try:
        data = flows.overview(
            db_session=db_session,
            events=get_event_store(context),
            settings=context.settings,
            filters=filters,
        )
    except SiyuError as exc:
        return error_page(request, user, sign, exc, "overview")
    template = "overview_panels.html" if is_htmx(request) else "overview.html"
    values: dict[str, Any] = {
        "data": data,
        "channels": [(key, gettext(label)) for key, label in flows.CHANNELS.items()],
        "presets": flows.PRESETS,
    }
    return page(request, template, values, user=user, sign=sign, active="overview")


# -- people -------------------------------------------------------------------------------


def _page_number(text: str) -> int:
    return int(text) if text.isdigit() and 0 < int(text) < 1_000_000 else 1


@router.get("/people")
def people(
    request: Request,
    user: User,
    sign: SignerDep,
    context: Context,
    db_session: DbSession,
    q: Text = "",
    page_no: Annotated[str, Query(alias="page", max_length=7)] = "1",
) -> Response:
    number = _page_number(page_no)
    values: dict[str, Any] = {
        "q": q,
        "page_no": number,
        "result": None,
        "error": None,
        "people_url": lambda n: "/people?" + urlencode({"q": q, "page": n}),
    }
    try:
        events = get_event_store(context)
        result = profiles.search(
            db_session=db_session,
            events=events,
            hash_key=derive_hash_key(secret_key(context.settings)),
            query=q,
            offset=(number - 1) * PEOPLE_PAGE,
            limit=PEOPLE_PAGE,
        )
        values["result"] = result
        values["tiers"] = flows.tiers_of(
            events, context.settings, [item.person_id for item in result.items]
        )
        values["pages"] = max(math.ceil(result.total / PEOPLE_PAGE), 1)
        values["stage_label"] = flows.stage_label
    except SiyuError as exc:
        values["error"], values["hint"] = exc.render(), exc.render_hint()
    template = "people_results.html" if is_htmx(request) else "people.html"
    return page(request, template, values, user=user, sign=sign, active="people")


@router.get("/people/{person_id}")
def person(
    request: Request,
    person_id: str,
    user: User,
    sign: SignerDep,
    context: Context,
    db_session: DbSession,
) -> Response:
    try:
        events = get_event_store(context)
        data = flows.profile(
            db_session=db_session,
            events=events,
            settings=context.settings,
            person_id=person_id[:64],
            reveal=user.may_see_pii,
        )
        timeline = _timeline(events, data.person_id, user, "", "", 1, history=data.history)
    except SiyuError as exc:
        return error_page(request, user, sign, exc, "people")
    values = {
        "p": data,
        "timeline": timeline,
        "timeline_url": _timeline_url(data.person_id, "", ""),
        "channel_label": flows.channel_label,
        "mask_properties": _masker(user),
    }
    return page(request, "profile.html", values, user=user, sign=sign, active="people")


@router.get("/people/{person_id}/timeline")
def person_timeline(
    request: Request,
    person_id: str,
    user: User,
    sign: SignerDep,
    context: Context,
    db_session: DbSession,
    name: Text = "",
    channel: Text = "",
    page_no: Annotated[str, Query(alias="page", max_length=7)] = "1",
) -> Response:
    try:
        events = get_event_store(context)
        found = identity.get_person_or_raise(db_session=db_session, person_id=person_id[:64]).id
        timeline = _timeline(events, found, user, name, channel, _page_number(page_no))
    except SiyuError as exc:
        return error_page(request, user, sign, exc, "people")
    values = {
        "timeline": timeline,
        "timeline_url": _timeline_url(found, name, channel),
        "channel_label": flows.channel_label,
        "mask_properties": _masker(user),
    }
    return page(request, "timeline.html", values, user=user, sign=sign, active="people")


def _timeline(
    events: EventStore,
    person_id: str,
    user: ConsoleUser,
    name: str,
    channel: str,
    number: int,
    *,
    history: profiles.History | None = None,
) -> dict[str, Any]:
    history = history or profiles.History.read(events, person_id)
    result = history.page(
        names=[name] if name else None,
        channel=channel or None,
        offset=(number - 1) * TIMELINE_PAGE,
        limit=TIMELINE_PAGE,
    )
    return {
        "result": result,
        "name": name,
        "channel": channel,
        "page_no": number,
        "pages": max(math.ceil(result.total / TIMELINE_PAGE), 1),
        "person_id": person_id,
    }


def _timeline_url(person_id: str, name: str, channel: str) -> Callable[[int], str]:
    base = f"/people/{quote(person_id, safe='')}/timeline?"
    return lambda n: base + urlencode({"name": name, "channel": channel, "page": n})


def _masker(user: ConsoleUser) -> Any:
    return (lambda properties: properties) if user.may_see_pii else flows.mask_properties
