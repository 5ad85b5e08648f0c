"""WeCom (企业微信) callback encryption, as WeCom documents it (加解密方案说明).

- ``msg_signature`` = SHA-1 hex of the lexicographically sorted concatenation of
  ``[token, timestamp, nonce, encrypt]``;
- the AES key is ``base64decode(EncodingAESKey + "=")`` (32 bytes); AES-256-CBC with the first
  16 bytes of the key as IV; PKCS#7 padding to a multiple of **32** bytes;
- the plaintext is 16 random bytes, the message length (4 bytes, big-endian), the message and
  the receive id (the CorpID for a company's own callbacks), which must match.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from siyu.collect.webhooks.exceptions import WebhookConfigError, WebhookSignatureError
from siyu.core.i18n import N_

ENCODING_AES_KEY_LENGTH = 43
BLOCK_SIZE = 32
RANDOM_PREFIX_LENGTH = 16
_LENGTH = struct.Struct(">I")


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """The ``msg_signature`` WeCom sends with a callback."""
    joined = "".join(sorted([token, timestamp, nonce, encrypt]))
    return hashlib.sha1(joined.encode(), usedforsecurity=False).hexdigest()


def decode_aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key an EncodingAESKey (43 characters of base64) stands for."""
    if len(encoding_aes_key) != ENCODING_AES_KEY_LENGTH or not encoding_aes_key.isalnum():
        raise WebhookConfigError(
            N_("The EncodingAESKey must be 43 letters and digits"),
            hint=N_("Copy it from the app's 接收消息 settings in the WeCom admin console."),
        )
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error:
        key = b""
    if len(key) != 32:  # pragma: no cover - 43 alphanumerics always decode to 32 bytes
        raise WebhookConfigError(N_("The EncodingAESKey does not decode to a 32-byte key"))
    return key


def pkcs7_pad(data: bytes, block_size: int = BLOCK_SIZE) -> bytes:
    amount = block_size - len(data) % block_size
    return data + bytes([amount]) * amount


def pkcs7_unpad(data: bytes, block_size: int = BLOCK_SIZE) -> bytes:
    if not data:
        raise ValueError("empty plaintext")
    amount = data[-1]
    if not 1 <= amount <= block_size or data[-amount:] != bytes([amount]) * amount:
        raise ValueError("bad padding")
    return data[:-amount]


@dataclass(frozen=True)
class WeComCrypto:
    """Signature check, decryption and encryption for one callback configuration."""

    token: str
    encoding_aes_key: str
    receive_id: str

    @property
    def key(self) -> bytes:
        return decode_aes_key(self.encoding_aes_key)

    def sign(self, timestamp: str, nonce: str, encrypt: str) -> str:
        return signature(self.token, timestamp, nonce, encrypt)

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        """Raise :class:`WebhookSignatureError` unless ``msg_signature`` is right."""
        expected = self.sign(timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode(), msg_signature.strip().lower().encode()):
            raise WebhookSignatureError(
                N_("The WeCom msg_signature does not match"), reason="signature_mismatch"
            )

    def decrypt(self, encrypt: str) -> bytes:
        """The message inside ``encrypt``; the receive id must be ours."""
        key = self.key
        try:
            ciphertext = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise _undecryptable("not_base64") from None
        if not ciphertext or len(ciphertext) % 16:
            raise _undecryptable("bad_length")
        decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        try:
            plain = pkcs7_unpad(padded)
        except ValueError:
            raise _undecryptable("bad_padding") from None
        header = RANDOM_PREFIX_LENGTH + _LENGTH.size
        if len(plain) < header:
            raise _undecryptable("too_short")
        (length,) = _LENGTH.unpack_from(plain, RANDOM_PREFIX_LENGTH)
        if header + length > len(plain):
            raise _undecryptable("bad_message_length")
        message = plain[header : header + length]
        receive_id = plain[header + length :]
        if not hmac.compare_digest(receive_id, self.receive_id.encode()):
            raise WebhookSignatureError(
                N_("The WeCom callback is addressed to another CorpID"),
                reason="receive_id_mismatch",
            )
        return message

    def encrypt(self, message: bytes, *, random_prefix: bytes | None = None) -> str:
        """``message`` encrypted as WeCom does (``random_prefix`` fixed only in tests)."""
        prefix = os.urandom(RANDOM_PREFIX_LENGTH) if random_prefix is None else random_prefix
        if len(prefix) != RANDOM_PREFIX_LENGTH:
            raise ValueError("the random prefix is 16 bytes")
        plain = prefix + _LENGTH.pack(len(message)) + message + self.receive_id.encode()
        key = self.key
        encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
        ciphertext = encryptor.update(pkcs7_pad(plain)) + encryptor.finalize()
        return base64.b64encode(ciphertext).decode("ascii")


def _undecryptable(reason: str) -> WebhookSignatureError:
    # A message that is correctly signed but cannot be decrypted was not encrypted with our
    # key: as untrusted as a wrong signature, so the same 401.
    return WebhookSignatureError(
        N_("The WeCom message cannot be decrypted with this endpoint's EncodingAESKey"),
        reason=f"decrypt_failed:{reason}",
    )
