"""Console routes for the catalogue of people: tags, segments (with the rule builder) and
tiers. Thin: each parses its input, calls one flow, and renders one template."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from siyu.api.context import AppContext
from siyu.api.deps import Context, DbSession, RowId, get_event_store
from siyu.core.errors import NotFoundError, SiyuError
from siyu.core.i18n import N_, gettext
from siyu.tags import service as tags
from siyu.web import catalog_flows as flows
from siyu.web.auth import Signer
from siyu.web.deps import MANAGERS, ConsoleUser, SignerDep, User, csrf_ok, error_page, is_htmx, page

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Query(max_length=200)]
PageNo = Annotated[str, Query(alias="page", max_length=7)]
FormText = Annotated[str, Form(max_length=200)]
RuleJson = Annotated[str, Form(max_length=50_000)]


def _page_number(text: str) -> int:
    return int(text) if text.isdigit() and 0 < int(text) < 1_000_000 else 1


def _expired() -> SiyuError:
    return flows.NotAllowedError(N_("The form expired; reload the page."))


def _url(path: str, **params: Any) -> Callable[[int], str]:
    kept = {k: v for k, v in params.items() if v}
    return lambda n: f"{path}?" + urlencode({**kept, "page": n})


# -- tags -----------------------------------------------------------------------------------


@router.get("/tags")
def tag_library(
    request: Request,
    user: User,
    sign: SignerDep,
    context: Context,
    db_session: DbSession,
    q: Text = "",
    category: Text = "",
    sort: Text = "category",
    page_no: PageNo = "1",
) -> Response:
    number = _page_number(page_no)
    values: dict[str, Any] = {
        "q": q,
        "category": category,
        "sort": sort if sort in flows.TAG_SORTS else "category",
        "sorts": [(k, gettext(v)) for k, v in flows.TAG_SORTS.items()],
        "page_no": number,
        "library": None,
        "error": None,
        "may_manage": user.role in MANAGERS,
        "refresh": None,
        "tags_url": _url("/tags", q=q, category=category, sort=sort),
    }
    try:
        events = get_event_store(context)
        values["library"] = flows.tag_library(
            db_session=db_session, events=events, category=category, q=q, sort=sort, page=number
        )
        runs = tags.list_refreshes(db_session, limit=1)
        values["refresh"] = runs[0] if runs else None
    except SiyuError as exc:
        values["error"], values["hint"] = exc.render(), exc.render_hint()
    template = "tags_results.html" if is_htmx(request) else "tags.html"
    return page(request, template, values, user=user, sign=sign, active="tags")


@router.post("/tags/refresh")
def refresh_tags(
    request: Request,
    user: User,
    sign: SignerDep,
    context: Context,
    db_session: DbSession,
    csrf_token: FormText = "",
    tag: FormText = "",
) -> Response:
    """Queue a refresh (all tags, or one tag and what it needs); answer its progress panel."""
    values: dict[str, Any] = {"refresh": None, "error": None, "tag": tag}
    try:
        if not csrf_ok(request, sign, csrf_token):
            raise _expired()
        flows.ensure_manager(user.role)
        values["refresh"] = flows.start_refresh(
            db_session=db_session,
            database=context.database,
            events=get_event_store(context),
            settings=context.settings,
            keys=[tag] if tag else None,
        )
    except SiyuError as exc:
        values["error"], values["hint"] = exc.render(), exc.render_hint()
        if not is_htmx(request):
            return error_page(request, user, sign, exc, "tags")
    if not is_htmx(request):
        return RedirectResponse(f"/tags/{quote(tag, safe='')}" if tag else "/tags", 303)
    return page(request, "tags_refresh.html", values, user=user, sign=sign, active="tags")


@router.get("/tags/refreshes/{run_id}")
def refresh_status(
    request: Request, run_id: RowId, user: User, sign: SignerDep, db_session: DbSession
) -> Response:
    """The progress panel of a refresh, polled by HTMX while it is queued or running."""
    values: dict[str, Any] = {"refresh": None, "error": None, "tag": ""}
    try:
        values["refresh"] = tags.get_refresh(db_session, run_id)
    except SiyuError as exc:
        values["error"], values["hint"] = exc.render(), exc.render_hint()
    return page(request, "tags_refresh.html", values, user=user, sign=sign, active="tags")


@router.get("/tags/{key}")
def tag_detail(
    request: Request,
    key: str,
    user: User,
    sign: SignerDep,
    context: Context,
    db_session: DbSession,
) -> Response:
    return _tag_page(request, user, sign, context, db_session, key[:64])


def _tag_page(
    request: Request,
    user: ConsoleUser,
    sign: Signer,
    context: AppContext,
    db_session: Session,
    key: str,
    *,
    edit_error: str | None = None,
    edited: str | None = None,
) -> Response:
    try:
        data = flows.tag_page(db_session=db_session, events=get_event_store(context), key=key)
    except SiyuError as exc:
        return error_page(request, user, sign, exc, "tags")
    values = {
        "t": data,
        "may_manage": user.role in MANAGERS,
        "refresh": data.refreshes[0] if data.refreshes else None,
        "error": None,
        "tag": data.tag.key,
        "edit_error": edit_error,
        "edited": edited,
    }
    status_code = 422 if edit_error else 200
    return page(
        request, "tag.html", values, user=user, sign=sign, active="tags", status_code=status_code
    )


@router.post("/tags/{key}/edit")
def edit_tag(
    request: Request,
    key: str,
    user: User,
    sign: SignerDep,
    context: Context,
    db_session: DbSession,
    csrf_token: FormText = "",
    definition: Annotated[str, Form(max_length=100_000)] = "",
) -> Response:
    """Save the edited YAML as the tag's next version (errors keep the text in the page)."""
    key = key[:64]
    try:
        if not csrf_ok(request, sign, csrf_token):
            raise _expired()
        flows.ensure_manager(user.role)
        flows.edit_tag(db_session=db_session, key=key, text=definition, by=user.username)
    except flows.NotAllowedError as exc:
        return error_page(request, user, sign, exc, "tags")
    except SiyuError as exc:
        reasons = "; ".join(str(e.get("reason", e)) for e in exc.errors[:3])
        message = exc.render() + (f": {reasons}" if reasons else "")
        db_session.rollback()
        return _tag_page(
            request, user, sign, context, db_session, key, edit_error=message, edited=definition
        )
    return RedirectResponse(f"/tags/{quote(key, safe='')}", status_code=303)


# -- segments -------------------------------------------------------------------------------


@router.get("/segments")
def segment_list(
    request: Request,
    user: User,
    sign: SignerDep,
    db_session: DbSession,
    q: Text = "",
    status: Text = "active",
    sort: Text = "key",
    page_no: PageNo = "1",
) -> Response:
    number = _page_number(page_no)
    values: dict[str, Any] = {
        "q": q,
        "status": status if status in ("active", "archived") else "active",
        "sort": sort if sort in flows.SEGMENT_SORTS else "key",
        "sorts": [(k, gettext(v)) for k, v in flows.SEGMENT_SORTS.items()],
        "page_no": number,
        "result": None,
        "error": None,
        "may_manage": user.role in MANAGERS,
        "segments_url": _url("/segments", q=q, status=status, sort=sort),
    }
    try:
        values["result"] = flows.segment_list(
            db_session=db_session, status=status, q=q, sort=sort, page=number
        )
    except SiyuError as exc:
        values["error"], values["hint"] = exc.render(), exc.render_hint()
    template = "segments_results.html" if is_htmx(request) else "segments.html"
    return page(request, template, values, user=user, sign=sign, active="segments")


def _builder(
    request: Request,
    user: ConsoleUser,
    sign: SignerDep,
    context: Context,
    db_session: DbSession,
    form: dict[str, str],
    error: SiyuError | None = None,
) -> Response:
    try:
        catalog = flows.builder_catalog(db_session=db_session, events=get_event_store(context))
    except SiyuError as exc:
        return error_page(request, user, sign, exc, "segments")
    values = {
        "catalog": catalog,
        "form": form,
        "error": error.render() if error else None,
        "hint": error.render_hint() if error else None,
        "may_manage": user.role in MANAGERS,
    }
    status_code = error.status if error is not None and 400 <= error.status < 500 else 200
    return page(
        request,
        "segment_builder.html",
        values,
        user=user,
        sign=sign,
        active="segments",
        status_code=status_code,
    )


@router.get("/segments/new")
def new_segment(
    request: Request, user: User, sign: SignerDep, context: Context, db_session: DbSession
) -> Response:
    form = {"key": "", "name": "", "description": "", "rule": ""}
    return _builder(request, user, sign, context, db_session, form)


@router.post("/segments/preview")
def preview_segment(
    request: Request,
    user: User,
    sign: SignerDep,
    context: Context,
    db_session: DbSession,
    csrf_token: FormText = "",
    rule: RuleJson = "",
) -> Response:
    """The live count and a sample of an unsaved rule (a panel swapped in by HTMX)."""
    values: dict[str, Any] = {"preview": None, "error": None, "empty": not rule.strip()}
    try:
        if not csrf_ok(request, sign, csrf_token):
            raise _expired()
        if values["empty"]:
            return page(request, "segment_preview.html", values, user=user, sign=sign)
        values["preview"] = flows.preview(
            db_session=db_session,
            events=get_event_store(context),
            settings=context.settings,
            rule_json=rule,
            reveal=user.may_see_pii,
        )
    except SiyuError as exc:
        values["error"], values["hint"] = exc.render(), exc.render_hint()
    return page(request, "segment_preview.html", values, user=user, sign=sign, active="segments")


@router.post("/segments")
def save_segment(
    request: Request,
    user: User,
    sign: SignerDep,
    context: Context,
    db_session: DbSession,
    csrf_token: FormText = "",
    key: Annotated[str, Form(max_length=64)] = "",
    name: FormText = "",
    description: Annotated[str, Form(max_length=2000)] = "",
    rule: RuleJson = "",
) -> Response:
    form = {"key": key, "name": name, "description": description, "rule": rule}
    try:
        if not csrf_ok(request, sign, csrf_token):
            raise _expired()
        flows.ensure_manager(user.role)
        saved = flows.create_segment(
            db_session=db_session,
            events=get_event_store(context),
            settings=context.settings,
            key=key,
            name=name,
            description=description,
            rule_json=rule,
        )
    except SiyuError as exc:
        db_session.rollback()
        return _builder(request, user, sign, context, db_session, form, exc)
    return RedirectResponse(f"/segments/{quote(saved.key, safe='')}", status_code=303)


@router.get("/segments/{key}")
def segment_detail(
    request: Request,
    key: str,
    user: User,
    sign: SignerDep,
    context: Context,
    db_session: DbSession,
    change: Text = "",
    page_no: PageNo = "1",
) -> Response:
    number = _page_number(page_no)
    try:
        data = flows.segment_page(
            db_session=db_session,
            events=get_event_store(context),
            settings=context.settings,
            key=key[:64],
            change=change,
            page=number,
        )
    except SiyuError as exc:
        return error_page(request, user, sign, exc, "segments")
    values = {
        "s": data,
        "may_manage": user.role in MANAGERS,
        "changes_url": _url(f"/segments/{quote(data.segment.key, safe='')}", change=data.change),
    }
    template = "segment_changes.html" if is_htmx(request) else "segment.html"
    return page(request, template, values, user=user, sign=sign, active="segments")


@router.post("/segments/{key}/evaluate")
def evaluate_segment(
    request: Request,
    key: str,
    user: User,
    sign: SignerDep,
    context: Context,
    db_session: DbSession,
    csrf_token: FormText = "",
) -> Response:
    """Snapshot the members now, recording who entered and who left."""
    try:
        if not csrf_ok(request, sign, csrf_token):
            raise _expired()
        flows.ensure_manager(user.role)
        flows.evaluate_segment(
            db_session=db_session,
            events=get_event_store(context),
            settings=context.settings,
            key=key[:64],
        )
    except SiyuError as exc:
        return error_page(request, user, sign, exc, "segments")
    return RedirectResponse(f"/segments/{quote(key[:64], safe='')}", status_code=303)


@router.post("/segments/{key}/{action}")
def archive_or_restore(
    request: Request,
    key: str,
    action: str,
    user: User,
    sign: SignerDep,
    db_session: DbSession,
    csrf_token: FormText = "",
) -> Response:
    """Archive a segment (undone by restore) or restore it."""
    if action not in ("archive", "restore"):
        return error_page(request, user, sign, NotFoundError(N_("No such page")), "segments")
    try:
        if not csrf_ok(request, sign, csrf_token):
            raise _expired()
        flows.ensure_manager(user.role)
        flows.set_archived(db_session=db_session, key=key[:64], archived=action == "archive")
    except SiyuError as exc:
        return error_page(request, user, sign, exc, "segments")
    return RedirectResponse(f"/segments/{quote(key[:64], safe='')}", status_code=303)


# -- tiers ----------------------------------------------------------------------------------


@router.get("/tiers")
def tier_overview(
    request: Request,
    user: User,
    sign: SignerDep,
    context: Context,
    start: Annotated[str, Query(alias="from", max_length=10)] = "",
    end: Annotated[str, Query(alias="to", max_length=10)] = "",
) -> Response:
    try:
        data = flows.tier_page(
            events=get_event_store(context), settings=context.settings, start=start, end=end
        )
    except SiyuError as exc:
        return error_page(request, user, sign, exc, "segments")
    template = "tiers_matrix.html" if is_htmx(request) else "tiers.html"
    return page(request, template, {"d": data}, user=user, sign=sign, active="segments")
