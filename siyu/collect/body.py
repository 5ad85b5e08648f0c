"""Reading a tracking request's body within its limits: size, gzip, UTF-8, JSON, shape."""

from __future__ import annotations

import json
import zlib
from collections.abc import AsyncIterator
from typing import Any

import orjson

from siyu.collect.errors import MalformedBodyError, PayloadTooLargeError, UnsupportedEncodingError
from siyu.core.i18n import N_

MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_BATCH_ITEMS = 1000


def _too_large(limit: int, what: str) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        N_("The {what} is larger than {limit} bytes"),
        hint=N_("Send at most 1,000 messages and 5 MB per request; split larger batches."),
        what=what,
        limit=limit,
    )


async def read_limited(
    chunks: AsyncIterator[bytes], *, content_length: str | None, limit: int = MAX_BODY_BYTES
) -> bytes:
    """The whole body, refusing (413) as soon as it passes ``limit`` bytes."""
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise _too_large(limit, "body")
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise _too_large(limit, "body")
        parts.append(chunk)
    return b"".join(parts)


def decompress(body: bytes, encoding: str | None, *, limit: int = MAX_BODY_BYTES) -> bytes:
    """``body`` decoded from its ``Content-Encoding``; a gzip body may not inflate past
    ``limit`` bytes (a gzip bomb is refused after at most ``limit`` bytes of work)."""
    coding = (encoding or "identity").strip().lower()
    if coding in ("identity", ""):
        return body
    if coding not in ("gzip", "x-gzip"):
        raise UnsupportedEncodingError(
            N_("Content-Encoding {encoding!r} is not supported"),
            hint=N_("Send the body uncompressed or gzip-compressed."),
            encoding=coding,
        )
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise MalformedBodyError(
            N_("The body is not valid gzip: {reason}"), reason=str(exc)
        ) from None
    if len(data) > limit:
        raise _too_large(limit, "decompressed body")
    if not inflater.eof:
        raise MalformedBodyError(N_("The gzip body is truncated"), reason="truncated")
    return data


def _reject_constant(name: str) -> float:
    # NaN and ±Infinity are not JSON; kept as floats here so the one message that holds
    # them is refused (the others in the batch are not).
    return float(name.replace("Infinity", "inf"))


def parse_json(data: bytes) -> Any:
    """The JSON document in ``data`` (UTF-8), or 400."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBodyError(
            N_("The body is not valid UTF-8 (byte {position})"), position=exc.start
        ) from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise MalformedBodyError(
            N_("The body is not JSON: {reason}"), reason=f"{exc.msg} at character {exc.pos}"
        ) from None
    except (RecursionError, ValueError) as exc:
        raise MalformedBodyError(
            N_("The body is not JSON: {reason}"), reason=type(exc).__name__
        ) from None


# Digits mapped to one byte, so a run of 20 (an integer orjson would read as a float) is
# found by one ``bytes.find`` instead of a regular expression (10x faster on a 5 MB body).
_DIGITS = bytes.maketrans(b"0123456789", b"9999999999")
_LONG_NUMBER = b"9" * 20


def parse_json_strict(data: bytes) -> tuple[Any, bool]:
    """The JSON document in ``data``, and whether the strict parser read it: then it holds
    no NaN or Infinity, no lone surrogate and no integer past 64 bits, which the batch fast
    path relies on. Anything else is read by :func:`parse_json`, which keeps every value
    (so the one message holding it is refused alone) or answers 400."""
    if data.translate(_DIGITS).find(_LONG_NUMBER) < 0:
        try:
            return orjson.loads(data), True
        except orjson.JSONDecodeError:
            pass
    return parse_json(data), False


def take_write_key(data: bytes) -> tuple[str | None, bytes]:
    """The ``writeKey`` a body carries, for clients that cannot set a header
    (``navigator.sendBeacon``), and the body without it, so the key is never kept among the
    dead letters. ``(None, data)`` when the body holds no key or cannot be read."""
    try:
        document = parse_json(data)
    except MalformedBodyError:
        return None, data
    if not isinstance(document, dict) or not isinstance(document.get("writeKey"), str):
        return None, data
    key = document.pop("writeKey")
    # ASCII escapes and NaN kept as sent: the body reads back exactly as it came.
    return key or None, json.dumps(document).encode("ascii")


def message_of(document: Any) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise MalformedBodyError(N_("The body must be a JSON object"), reason="not an object")
    return document


def batch_of(document: Any) -> tuple[list[Any], dict[str, Any]]:
    """The messages of a ``/v1/batch`` body and the body itself (its sentAt, context)."""
    body = message_of(document)
    items = body.get("batch")
    if not isinstance(items, list):
        raise MalformedBodyError(
            N_("The body must have a list named batch"), reason="batch is not a list"
        )
    if len(items) > MAX_BATCH_ITEMS:
        raise PayloadTooLargeError(
            N_("The batch has {count} messages; at most {limit} are accepted"),
            hint=N_("Send at most 1,000 messages and 5 MB per request; split larger batches."),
            count=len(items),
            limit=MAX_BATCH_ITEMS,
        )
    return items, body
