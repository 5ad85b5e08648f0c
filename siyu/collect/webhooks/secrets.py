"""Webhook secrets encrypted at rest with a key derived from the secret key.

HKDF-SHA256 derives a dedicated 256-bit key from ``SIYU_SECRET_KEY`` (so the secret key is
never used directly); each value is sealed with AES-256-GCM under a fresh 96-bit nonce, with
the column name as associated data (a ciphertext copied into another column does not open).
"""

from __future__ import annotations

import base64
import binascii
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from siyu.collect.webhooks.exceptions import WebhookSecretError
from siyu.core.i18n import N_

VERSION = "v1"
_INFO = b"siyu/collect/webhooks/secrets/v1"
_NONCE_BYTES = 12


class SecretBox:
    """Seal and open the secrets of webhook endpoints."""

    def __init__(self, secret_key: str) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
            secret_key.encode()
        )
        self._aead = AESGCM(derived)

    def seal(self, value: str, *, field: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, value.encode(), field.encode())
        return f"{VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode('ascii')}"

    def open(self, token: str, *, field: str) -> str:
        version, _, body = token.partition(".")
        try:
            if version != VERSION:
                raise ValueError(version)
            raw = base64.urlsafe_b64decode(body.encode("ascii"))
            return self._aead.decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], field.encode()
            ).decode()
        except (InvalidTag, ValueError, binascii.Error, UnicodeError):
            raise WebhookSecretError(
                N_("A stored webhook secret ({field}) cannot be decrypted"),
                hint=N_(
                    "SIYU_SECRET_KEY (or SIYU_HOME/secret.key) changed since the endpoint was "
                    "added: restore it, or remove the endpoint and add it again."
                ),
                field=field,
            ) from None


@lru_cache(maxsize=4)
def secret_box(secret_key: str) -> SecretBox:
    """The box for ``secret_key``, derived once per process."""
    return SecretBox(secret_key)


MASK = "******"


def mask(value: str | None) -> str | None:
    """A secret as shown to people and API clients: whether it is set, nothing of its value."""
    return None if value is None else MASK
