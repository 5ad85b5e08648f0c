"""Identifier types, their normalisation, and the merge rules.

Normalisation is written twice on purpose: as Ibis expressions for set-at-a-time resolution
over the event store, and as a scalar function for lookups (``phone:138 0013 8000``). A test
checks that both agree.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from siyu.events.schema import IDENTIFIER_TYPES

# Lower is stronger: the order in which links are made when a component must be split.
PRIORITY: dict[str, int] = {
    "member_no": 1,
    "unionid": 2,
    "phone": 3,
    "wecom_external_userid": 4,
    "openid": 5,
    "email": 6,
    "device_id": 8,
    "anonymous_id": 9,
}
KNOWN_TYPES = IDENTIFIER_TYPES
DEVICE_TYPES = ("device_id", "anonymous_id")
_CUSTOM_TYPE = re.compile(r"^custom:[a-z][a-z0-9_]{0,39}$")
WHITESPACE = " \t\r\n"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_EMAIL = re.compile(EMAIL_PATTERN)


class IdentityRules(BaseModel):
    """Configurable merge rules."""

    # A person holds at most this many identifiers of a type; more would fuse different people.
    limits: dict[str, int] = Field(default_factory=lambda: {"member_no": 1})
    # A device seen with more than this many distinct people's identifiers is shared (a store
    # kiosk, a family tablet) and is not used to merge anyone.
    shared_device_limit: int = Field(default=3, ge=1)


def is_valid_type(kind: str) -> bool:
    return kind in PRIORITY or bool(_CUSTOM_TYPE.match(kind))


def priority(kind: str) -> int:
    return PRIORITY.get(kind, 7)


def normalize_phone(value: str) -> str | None:
    """E.164: mainland mobiles as +86 and 11 digits; other +CC numbers kept; else invalid."""
    digits = re.sub(r"[^0-9+]", "", value)
    if digits.startswith("+86") and len(digits) == 14:
        return digits
    if digits.startswith("86") and len(digits) == 13 and digits[2] == "1":
        return "+" + digits
    if len(digits) == 11 and digits.startswith("1"):
        return "+86" + digits
    if digits.startswith("+") and 9 <= len(digits) <= 16 and "+" not in digits[1:]:
        return digits
    return None


def normalize(kind: str, value: Any) -> str | None:
    """The canonical form of an identifier value, or None when it is not a valid one."""
    if value is None:
        return None
    text = str(value).strip(WHITESPACE)
    if not text or len(text) > 256:
        return None
    if kind == "phone":
        return normalize_phone(text)
    if kind == "email":
        lowered = text.lower()
        return lowered if _EMAIL.match(lowered) else None
    return text


def mask(kind: str, value: str) -> str:
    """How an identifier is shown: 138****5678, a***@qq.com, oX3f****9Kd2."""
    if kind == "phone":
        local = value[3:] if value.startswith("+86") else value.lstrip("+")
        return f"{local[:3]}****{local[-4:]}" if len(local) >= 7 else "****"
    if kind == "email":
        name, _, domain = value.partition("@")
        return f"{name[:1]}***@{domain}"
    if len(value) <= 8:
        return value[:2] + "****"
    return f"{value[:4]}****{value[-4:]}"
