"""Console sign-in: signed session cookies, CSRF tokens, and a lockout after failed logins.

The session is a cookie signed with a key derived from the secret key (HMAC-SHA256): it
holds the user id and when it was issued, nothing else. The user is read again on every
request, so a deactivated user or a changed role takes effect at once. CSRF tokens are
HMACs of a random cookie (signed double submit): a form posted from another site cannot
carry a matching token, and a cookie planted by a neighbour cannot be turned into one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

SESSION_COOKIE = "siyu_session"
CSRF_COOKIE = "siyu_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_SECONDS = 12 * 3600


def derive_key(secret: str, purpose: str) -> bytes:
    """A key for one purpose, so a value signed for one use is worthless for another."""
    return hashlib.sha256(f"siyu console {purpose}\x00{secret}".encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Signer:
    """Sign and check small JSON payloads (``payload.signature``, URL-safe base64)."""

    key: bytes

    def sign(self, payload: dict[str, Any]) -> str:
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{self._mac(body)}"

    def unsign(self, token: str | None, *, max_age: int) -> dict[str, Any] | None:
        """The payload if the signature holds and it was issued less than ``max_age`` ago."""
        if not token or token.count(".") != 1:
            return None
        body, mac = token.split(".")
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            payload: dict[str, Any] | None = json.loads(_unb64(body))
        except (ValueError, json.JSONDecodeError):
            return None
        issued = payload.get("iat") if isinstance(payload, dict) else None
        if not isinstance(issued, int) or not 0 <= time.time() - issued < max_age:
            return None
        return payload

    def csrf_token(self, nonce: str) -> str:
        return self._mac(f"csrf:{nonce}")

    def check_csrf(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        return hmac.compare_digest(token, self.csrf_token(nonce))

    def _mac(self, text: str) -> str:
        return _b64(hmac.new(self.key, text.encode(), hashlib.sha256).digest())


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def session_payload(user_id: int) -> dict[str, Any]:
    return {"uid": user_id, "iat": int(time.time())}


@dataclass
class LoginThrottle:
    """Refuse logins for a user name or a client address after ``limit`` failures within
    ``window`` seconds, for ``lockout`` seconds. Kept in the server's memory: a restart
    forgets it, and each server process counts on its own."""

    limit: int = 5
    window: float = 15 * 60
    lockout: float = 15 * 60
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _locked_until: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def keys(username: str, client: str) -> list[str]:
        return [f"user:{username.strip().lower()}", f"client:{client}"]

    def locked_for(self, keys: list[str], now: float | None = None) -> float:
        """Seconds until these keys may try again (0: not locked)."""
        moment = time.monotonic() if now is None else now
        with self._lock:
            return max([0.0, *(self._locked_until.get(k, 0.0) - moment for k in keys)])

    def failed(self, keys: list[str], now: float | None = None) -> None:
        moment = time.monotonic() if now is None else now
        with self._lock:
            for key in keys:
                recent = self._failures.setdefault(key, deque())
                recent.append(moment)
                while recent and recent[0] <= moment - self.window:
                    recent.popleft()
                if len(recent) >= self.limit:
                    self._locked_until[key] = moment + self.lockout
                    recent.clear()

    def succeeded(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                if key.startswith("user:"):
                    self._failures.pop(key, None)
