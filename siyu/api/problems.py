"""Every error leaves the API as RFC 9457 ``application/problem+json``; mapped here, once."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from siyu.core.errors import SiyuError
from siyu.core.i18n import N_, gettext, ngettext
from siyu.core.logging import get_logger, request_id_var

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = get_logger("api")

# Titles for the HTTP errors the framework raises itself (unknown route, wrong method, …),
# so they are translated like our own; other statuses fall back to the standard phrase.
HTTP_TITLES = {
    400: N_("Bad request"),
    401: N_("Authentication required"),
    403: N_("Forbidden"),
    404: N_("Not found"),
    405: N_("Method not allowed"),
    406: N_("Not acceptable"),
    409: N_("Conflict"),
    413: N_("Request too large"),
    415: N_("Unsupported media type"),
    422: N_("Invalid request"),
    429: N_("Too many requests"),
    500: N_("Internal error"),
    503: N_("Service unavailable"),
}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for routes that may answer these statuses as problem+json."""
    return {
        status: {
            "description": HTTP_TITLES.get(status, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for status in statuses
    }


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:siyu:problem:{code}",
        "title": title,
        "status": status,
        "code": code,
        "instance": request.url.path,
        "request_id": request_id_var.get(),
    }
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _pointer(location: tuple[Any, ...]) -> str:
    return "/" + "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in location)


async def _siyu_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SiyuError)
    extra: dict[str, Any] = {}
    hint = exc.render_hint()
    if hint:
        extra["hint"] = hint
    for key in ("setting",):
        if key in exc.context:
            extra[key] = exc.context[key]
    return problem_response(
        request,
        status=exc.status,
        code=exc.code,
        title=exc.render_title(),
        detail=exc.render(),
        errors=exc.errors,
        extra=extra,
        headers=exc.response_headers() or None,
    )


def _validation_problem(request: Request, errors: list[dict[str, Any]]) -> JSONResponse:
    return problem_response(
        request,
        status=422,
        code="validation_failed",
        title=gettext("Invalid request"),
        detail=ngettext(
            "The request has {count} invalid field",
            "The request has {count} invalid fields",
            len(errors),
        ).format(count=len(errors)),
        errors=errors,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for error in exc.errors():
        location = tuple(error.get("loc", ()))
        if error.get("type") == "json_invalid":
            # The location of a JSON syntax error is a character offset, not a field.
            reason = str(error.get("ctx", {}).get("error") or error.get("msg", ""))
            at = location[1] if len(location) > 1 else "?"
            errors.append(
                {
                    "pointer": "/body",
                    "field": "body",
                    "reason": f"{error.get('msg', '')}: {reason} (at character {at})",
                    "type": "json_invalid",
                }
            )
            continue
        errors.append(
            {
                "pointer": _pointer(location),
                "field": ".".join(str(part) for part in location[1:])
                or str(location[0] if location else ""),
                "reason": error.get("msg", ""),
                "type": error.get("type", ""),
            }
        )
    return _validation_problem(request, errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI answers a body that is not UTF-8 with a bare 400: it is invalid input,
        # like malformed JSON, so it gets the same 422 problem.
        error = {
            "pointer": "/body",
            "field": "body",
            "reason": "body is not valid UTF-8",
            "type": "body_encoding",
        }
        return _validation_problem(request, [error])
    phrase = (
        HTTPStatus(exc.status_code).phrase
        if exc.status_code in HTTPStatus._value2member_map_
        else "Error"
    )
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
    title = HTTP_TITLES.get(exc.status_code)
    return problem_response(
        request,
        status=exc.status_code,
        code=phrase.lower().replace(" ", "_").replace("-", "_"),
        title=gettext(title) if title else phrase,
        detail=detail,
        headers=getattr(exc, "headers", None),
    )


def internal_error_response(request: Request) -> JSONResponse:
    """The 500 problem for an exception nobody expected.

    Logs the traceback with the request id; the answer shows no internals.
    """
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        request,
        status=500,
        code="internal_error",
        title=gettext("Internal error"),
        detail=gettext("Something went wrong on our side; quote the request id when reporting it."),
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # Safety net only: RequestContextMiddleware answers unexpected errors itself, inside the
    # request's context (request id, language), which this outermost handler runs outside of.
    return internal_error_response(request)


def install(app: FastAPI) -> None:
    app.add_exception_handler(SiyuError, _siyu_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
