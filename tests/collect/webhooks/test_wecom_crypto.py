"""WeCom callback crypto reproduces WeCom's published examples byte for byte."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from siyu.collect.webhooks.exceptions import WebhookConfigError, WebhookSignatureError
from siyu.collect.webhooks.wecom_crypto import (
    WeComCrypto,
    decode_aes_key,
    pkcs7_pad,
    pkcs7_unpad,
    signature,
)
from tests.collect.webhooks.vectors import ALL, DOCS_MESSAGE, Vector

IDS = ["docs-verify-url", "docs-message", "sample-verify-url", "sample-message"]


def crypto_of(vector: Vector) -> WeComCrypto:
    return WeComCrypto(vector.token, vector.encoding_aes_key, vector.corp_id)


def random_prefix_of(vector: Vector) -> bytes:
    """The 16 random bytes WeCom used, read with an independent decryption."""
    key = base64.b64decode(vector.encoding_aes_key + "=")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(base64.b64decode(vector.encrypt)) + decryptor.finalize()
    return plain[:16]


@pytest.mark.parametrize("vector", ALL, ids=IDS)
def test_signature_matches_the_published_one(vector: Vector) -> None:
    assert (
        signature(vector.token, vector.timestamp, vector.nonce, vector.encrypt)
        == vector.msg_signature
    )
    crypto_of(vector).verify(vector.msg_signature, vector.timestamp, vector.nonce, vector.encrypt)


@pytest.mark.parametrize("vector", ALL, ids=IDS)
def test_decrypt_gives_the_published_plaintext(vector: Vector) -> None:
    assert crypto_of(vector).decrypt(vector.encrypt) == vector.plaintext


@pytest.mark.parametrize("vector", ALL, ids=IDS)
def test_encrypt_reproduces_the_published_ciphertext(vector: Vector) -> None:
    crypto = crypto_of(vector)

    encrypted = crypto.encrypt(vector.plaintext, random_prefix=random_prefix_of(vector))

    assert encrypted == vector.encrypt


def test_aes_key_is_32_bytes_from_the_encoding_aes_key() -> None:
    key = decode_aes_key(DOCS_MESSAGE.encoding_aes_key)
    assert len(key) == 32
    assert key == base64.b64decode(DOCS_MESSAGE.encoding_aes_key + "=")


@pytest.mark.parametrize("bad", ["short", "a" * 44, "!" * 43])
def test_bad_encoding_aes_key_is_refused(bad: str) -> None:
    with pytest.raises(WebhookConfigError):
        decode_aes_key(bad)


def test_wrong_signature_is_refused() -> None:
    vector = DOCS_MESSAGE
    with pytest.raises(WebhookSignatureError) as caught:
        crypto_of(vector).verify("0" * 40, vector.timestamp, vector.nonce, vector.encrypt)
    assert caught.value.context["reason"] == "signature_mismatch"
    assert caught.value.status == 401


def test_another_corp_id_is_refused() -> None:
    vector = DOCS_MESSAGE
    other = WeComCrypto(vector.token, vector.encoding_aes_key, "ww_someone_else")
    with pytest.raises(WebhookSignatureError) as caught:
        other.decrypt(vector.encrypt)
    assert caught.value.context["reason"] == "receive_id_mismatch"


@pytest.mark.parametrize("garbage", ["not base64 !!", "AAAA", base64.b64encode(b"x" * 32).decode()])
def test_garbage_ciphertext_is_refused(garbage: str) -> None:
    with pytest.raises(WebhookSignatureError):
        crypto_of(DOCS_MESSAGE).decrypt(garbage)


def test_padding_is_to_32_bytes() -> None:
    assert len(pkcs7_pad(b"")) == 32
    assert pkcs7_pad(b"a" * 32)[-1] == 32
    assert len(pkcs7_pad(b"a" * 33)) == 64
    with pytest.raises(ValueError, match="padding"):
        pkcs7_unpad(b"a" * 31 + b"\x21")


@given(
    message=st.binary(max_size=2048),
    corp_id=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=32),
    key_bytes=st.binary(min_size=32, max_size=32),
)
def test_encrypt_then_decrypt_round_trips(message: bytes, corp_id: str, key_bytes: bytes) -> None:
    encoding_aes_key = base64.b64encode(key_bytes).decode()[:43]
    if not encoding_aes_key.isalnum():
        encoding_aes_key = (
            base64.b64encode(key_bytes).decode().translate(str.maketrans("+/", "Ab"))[:43]
        )
    crypto = WeComCrypto("token", encoding_aes_key, corp_id)

    encrypted = crypto.encrypt(message)

    assert crypto.decrypt(encrypted) == message
    sig = crypto.sign("1700000000", "nonce", encrypted)
    crypto.verify(sig, "1700000000", "nonce", encrypted)
