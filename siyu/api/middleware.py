"""Request id and locale for every request, as plain ASGI middleware."""

from __future__ import annotations

import re
import time

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from siyu.api.problems import internal_error_response
from siyu.core.i18n import negotiate, normalize_locale, use_locale
from siyu.core.ids import new_id
from siyu.core.logging import get_logger, request_id_var

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
LANG_COOKIE = "siyu_lang"  # set by the console's language switch
log = get_logger("api.access")


class RequestContextMiddleware:
    """Take or make ``X-Request-ID``, pick the language, echo both, log one access line.

    An unexpected exception is answered here as a 500 problem, so the answer and the logged
    traceback carry the request id and the caller's language.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else new_id("req")
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        started_response = False

        chosen = _cookie_locale(headers.get("cookie")) or negotiate(headers.get("accept-language"))
        with use_locale(chosen) as locale:

            async def send_with_headers(message: Message) -> None:
                nonlocal status, started_response
                if message["type"] == "http.response.start":
                    status, started_response = message["status"], True
                    response_headers = MutableHeaders(scope=message)
                    response_headers["X-Request-ID"] = request_id
                    response_headers.setdefault("Content-Language", locale)
                await send(message)

            try:
                await self.app(scope, receive, send_with_headers)
            except Exception:
                if started_response:
                    raise
                response = internal_error_response(Request(scope))
                await response(scope, receive, send_with_headers)
            finally:
                log.info(
                    "%s %s %s %.1fms",
                    scope["method"],
                    scope["path"],
                    status,
                    (time.perf_counter() - started) * 1000,
                )
                request_id_var.reset(token)


def _cookie_locale(cookie_header: str | None) -> str | None:
    """The language chosen in the console (cookie ``siyu_lang``), if any."""
    if not cookie_header:
        return None
    for part in cookie_header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == LANG_COOKIE:
            return normalize_locale(value)
    return None
