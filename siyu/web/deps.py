"""What every console route shares: the signed-in user, CSRF tokens, and page responses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from siyu.api.context import AppContext
from siyu.api.deps import get_context, get_db_session
from siyu.core.config import secret_key
from siyu.core.errors import SiyuError
from siyu.core.i18n import N_, current_locale, gettext
from siyu.core.logging import request_id_var
from siyu.privacy import service as users
from siyu.privacy.models import Role
from siyu.web.auth import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SESSION_COOKIE,
    SESSION_SECONDS,
    LoginThrottle,
    Signer,
    derive_key,
    new_nonce,
)
from siyu.web.rendering import render

# The left navigation: only pages that exist. Later pages add themselves here.
NAV = (
    ("overview", "/", N_("Overview")),
    ("people", "/people", N_("Customers")),
)
# No inline script and no request to another host; styles set by ECharts are attributes.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class ConsoleUser:
    id: int
    username: str
    display_name: str
    role: str

    @property
    def may_see_pii(self) -> bool:
        return users.may_see_pii(self.role)

    @property
    def role_label(self) -> str:
        return gettext(users.ROLE_LABELS.get(Role(self.role), self.role))


class LoginRequiredError(Exception):
    """Raised by :func:`require_user`; answered by a redirect to the login page."""


def signer(request: Request, context: Annotated[AppContext, Depends(get_context)]) -> Signer:
    """The console's signer, made once per app from the secret key."""
    state = request.app.state
    if not hasattr(state, "console_signer"):
        state.console_signer = Signer(derive_key(secret_key(context.settings), "session"))
    found: Signer = state.console_signer
    return found


def throttle(request: Request) -> LoginThrottle:
    state = request.app.state
    if not hasattr(state, "login_throttle"):
        state.login_throttle = LoginThrottle()
    found: LoginThrottle = state.login_throttle
    return found


def current_user(
    request: Request,
    db_session: Annotated[Session, Depends(get_db_session)],
    sign: Annotated[Signer, Depends(signer)],
) -> ConsoleUser | None:
    payload = sign.unsign(request.cookies.get(SESSION_COOKIE), max_age=SESSION_SECONDS)
    if payload is None or not isinstance(payload.get("uid"), int):
        return None
    user = users.get(db_session=db_session, user_id=payload["uid"])
    if user is None or not user.is_active:
        return None
    return ConsoleUser(user.id, user.username, user.display_name or user.username, user.role)


def require_user(
    user: Annotated[ConsoleUser | None, Depends(current_user)],
) -> ConsoleUser:
    if user is None:
        raise LoginRequiredError
    return user


MaybeUser = Annotated[ConsoleUser | None, Depends(current_user)]
User = Annotated[ConsoleUser, Depends(require_user)]
SignerDep = Annotated[Signer, Depends(signer)]


def login_redirect(request: Request, exc: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"/login?next={quote(target, safe='')}" if target != "/" else "/login"
    if request.headers.get("HX-Request"):
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def safe_next(target: str | None) -> str:
    """A local path to go to after login (never another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def csrf_nonce(request: Request) -> str:
    """The browser's CSRF cookie, or a new one (set on the response by :func:`page`)."""
    nonce = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not nonce:
        nonce = new_nonce()
        request.state.new_csrf = nonce
    return nonce


def csrf_ok(request: Request, sign: Signer, token: str | None) -> bool:
    return sign.check_csrf(
        request.cookies.get(CSRF_COOKIE), token or request.headers.get(CSRF_HEADER)
    )


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


# Who may change things in the console (refresh tags, save segments, build reports).
MANAGERS = frozenset({Role.admin.value, Role.operator.value})


def error_page(
    request: Request, user: ConsoleUser, sign: Signer, exc: SiyuError, active: str
) -> HTMLResponse:
    """A SiyuError as a console page with its title, message and hint, at its own status."""
    values = {"title": exc.render_title(), "message": exc.render(), "hint": exc.render_hint()}
    status = exc.status if 400 <= exc.status < 600 else 500
    return page(request, "error.html", values, user=user, sign=sign, active=active,
                status_code=status)  # fmt: skip


def page(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    user: ConsoleUser | None,
    sign: Signer,
    active: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    """Render a console template with what every page needs, and the console's headers."""
    base = {
        "request": request,
        "user": user,
        "nav": [(key, href, gettext(label)) for key, href, label in NAV],
        "active": active,
        "csrf_token": sign.csrf_token(csrf_nonce(request)),
        "locale": current_locale(),
        "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "request_id": request_id_var.get(),
        "tz": request.app.state.context.settings.tz,
    }
    response = HTMLResponse(render(template, {**base, **context}), status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Vary"] = "Cookie, HX-Request"
    new = getattr(request.state, "new_csrf", None)
    if new:
        response.set_cookie(
            CSRF_COOKIE,
            new,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
    return response
