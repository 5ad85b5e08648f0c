"""Errors of the collection API. Each maps to problem+json in ``siyu.api.problems``."""

from __future__ import annotations

from siyu.core.errors import AuthenticationError, InvalidInputError, NotFoundError, SiyuError
from siyu.core.i18n import N_


class WriteKeyError(AuthenticationError):
    """No, an unknown, a rotated or a revoked write key."""

    code = "write_key_invalid"
    title = N_("Write key required")

    def response_headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Basic realm="siyu"'}


class MalformedBodyError(SiyuError):
    """The body as a whole cannot be read: not UTF-8, not JSON, or not the expected shape."""

    code = "malformed_body"
    status = 400
    title = N_("Malformed request body")


class UnsupportedEncodingError(SiyuError):
    code = "unsupported_content_encoding"
    status = 415
    title = N_("Unsupported content encoding")


class PayloadTooLargeError(SiyuError):
    """The body, compressed or decompressed, or the batch is over its limit."""

    code = "payload_too_large"
    status = 413
    title = N_("Request too large")


class InvalidMessageError(SiyuError):
    """A single call's message was rejected; ``errors`` lists each field and reason."""

    code = "invalid_message"
    status = 400
    title = N_("Invalid message")


class InvalidSourceError(InvalidInputError):
    code = "invalid_source"


class SourceNotFoundError(NotFoundError):
    code = "source_not_found"


class DeadLetterNotFoundError(NotFoundError):
    code = "dead_letter_not_found"
