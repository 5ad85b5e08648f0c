"""WeCom's published examples (加解密方案说明 and the official sample code's Sample.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Vector:
    token: str
    encoding_aes_key: str
    corp_id: str
    timestamp: str
    nonce: str
    encrypt: str
    msg_signature: str
    plaintext: bytes


# The documentation's example (token QDG6eK, CorpID wx5823bf96d3bd56c7): URL check.
DOCS_VERIFY_URL = Vector(
    token="QDG6eK",
    encoding_aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    corp_id="wx5823bf96d3bd56c7",
    timestamp="1409659589",
    nonce="263014780",
    encrypt="P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
    msg_signature="5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    plaintext=b"1616140317555161061",
)

# The same configuration: an encrypted text message POSTed as a callback.
DOCS_MESSAGE = Vector(
    token="QDG6eK",
    encoding_aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    corp_id="wx5823bf96d3bd56c7",
    timestamp="1409659813",
    nonce="1372623149",
    encrypt=(
        "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3Qczc"
        "dCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLj"
        "vd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMn"
        "vw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k"
        "22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2Yoy"
        "yH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
    ),
    msg_signature="477715d11cdb4164915debcba66cb864d751f3e6",
    plaintext=(
        b"<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n"
        b"<FromUserName><![CDATA[mycreate]]></FromUserName>\n"
        b"<CreateTime>1409659813</CreateTime>\n"
        b"<MsgType><![CDATA[text]]></MsgType>\n"
        b"<Content><![CDATA[hello]]></Content>\n"
        b"<MsgId>4561255354251345929</MsgId>\n"
        b"<AgentID>218</AgentID>\n"
        b"</xml>"
    ),
)

# The sample code's configuration (CorpID ww1436e0e65a779aee): URL check and a message.
SAMPLE_VERIFY_URL = Vector(
    token="hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
    encoding_aes_key="6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
    corp_id="ww1436e0e65a779aee",
    timestamp="1476416373",
    nonce="47744683",
    encrypt="fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==",
    msg_signature="012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb",
    plaintext=b"1288432023552776189",
)

SAMPLE_MESSAGE = Vector(
    token="hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
    encoding_aes_key="6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
    corp_id="ww1436e0e65a779aee",
    timestamp="1476422779",
    nonce="1597212914",
    encrypt=(
        "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTk"
        "AgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJP"
        "QbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7Mhm"
        "EbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/"
        "oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+"
    ),
    msg_signature="0c3914025cb4b4d68103f6bfc8db550f79dcf48e",
    plaintext=(
        "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName>"
        "<CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content>"
        "<MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>"
    ).encode(),
)

ALL = [DOCS_VERIFY_URL, DOCS_MESSAGE, SAMPLE_VERIFY_URL, SAMPLE_MESSAGE]
