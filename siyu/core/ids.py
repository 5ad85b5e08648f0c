"""Identifiers: time-ordered, URL-safe, sortable as text."""

from __future__ import annotations

import os
import secrets

from siyu.core.clock import utcnow

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _b32(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str = "") -> str:
    """A ULID-style id: 48-bit millisecond time + 80 random bits, optionally prefixed.

    Time-ordered ids keep B-tree inserts local and make ids readable in logs.
    """
    millis = int(utcnow().timestamp() * 1000)
    rand = int.from_bytes(os.urandom(10), "big")
    body = _b32(millis, 10) + _b32(rand, 16)
    return f"{prefix}_{body}" if prefix else body


def new_token(nbytes: int = 32) -> str:
    """A URL-safe random secret."""
    return secrets.token_urlsafe(nbytes)
