"""WeChat official account server protocol: URL check, safe-mode crypto, message parsing.

Implements the published server-side protocol (the one of Tencent's
``WXBizMsgCrypt`` samples):

* URL verification (GET): ``signature = sha1("".join(sorted([token, timestamp, nonce])))``;
  answer with ``echostr`` unchanged.
* Plaintext POST: same ``signature`` in the query string, message XML in the body.
* Safe mode POST (``encrypt_type=aes``): body ``<xml><Encrypt>…</Encrypt></xml>``;
  ``msg_signature = sha1("".join(sorted([token, timestamp, nonce, Encrypt])))``.
  ``Encrypt`` is base64 of AES-256-CBC(key, iv=key[:16]) over
  ``random(16) + len(msg) as 4-byte big-endian + msg + AppID``, PKCS#7-padded to
  32-byte blocks, with ``key = base64decode(EncodingAESKey + "=")``.

All XML goes through defusedxml; DTDs, entities and external references are refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.etree.ElementTree import Element, ParseError

import defusedxml
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import ElementTree as SafeElementTree

from services.ingest.registry import pseudonymize
from yuqing.contracts import Channel, RawPost, make_post_id
from yuqing.contracts.limits import MAX_ATTRIBUTE_VALUE_CHARS, MAX_TEXT_CHARS, MAX_TITLE_CHARS, MAX_URL_CHARS
from yuqing.contracts.models import AttributeValue

BLOCK_SIZE = 32
MAX_XML_BYTES = 256 * 1024
ACK = "success"  # WeChat treats "success" (or an empty body) as "no reply"

_SAFE_QUERY_VALUE = re.compile(r"^[A-Za-z0-9]{1,64}$")
_MSG_TYPE = re.compile(r"^[a-z_]{1,32}$")


class WeChatError(Exception):
    """Base of WeChat protocol errors; ``status_code`` is what the view returns."""

    status_code = 400


class WeChatSignatureError(WeChatError):
    """``signature`` or ``msg_signature`` does not match."""

    status_code = 401


class WeChatCryptoError(WeChatError):
    """The ciphertext cannot be decrypted: bad base64, length, padding or layout."""


class WeChatAppIdError(WeChatCryptoError):
    """The decrypted message names another AppID."""

    status_code = 403


class WeChatXmlError(WeChatError):
    """The body is not the XML WeChat sends."""


class WeChatXmlSecurityError(WeChatXmlError):
    """The XML uses a DTD, entities or external references (e.g. an entity-expansion bomb)."""


def compute_signature(*parts: str) -> str:
    """sha1 over the lexicographically sorted ``parts`` concatenated."""
    return hashlib.sha1("".join(sorted(parts)).encode(), usedforsecurity=False).hexdigest()


class WeChatCrypto:
    """Signature checks and safe-mode encryption for one official account.

    ``encoding_aes_key`` may be None for an account in plaintext mode; the
    crypto methods then raise :class:`WeChatCryptoError`.
    """

    def __init__(self, token: str, encoding_aes_key: str | None, app_id: str, *,
                 random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self._token = token
        self._app_id = app_id.encode()
        self._random_bytes = random_bytes
        self._key = None if encoding_aes_key is None else _aes_key(encoding_aes_key)

    def verify_url(self, *, signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """Check the GET verification request; returns the body to answer (``echostr``)."""
        self.verify_signature(signature=signature, timestamp=timestamp, nonce=nonce)
        return echostr

    def verify_signature(self, *, signature: str, timestamp: str, nonce: str) -> None:
        expected = compute_signature(self._token, timestamp, nonce)
        if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
            raise WeChatSignatureError("signature does not match")

    def decrypt_echostr(self, *, msg_signature: str, timestamp: str, nonce: str,
                        echostr: str) -> str:
        """URL verification with an encrypted ``echostr`` (the WeCom variant)."""
        self._verify_msg_signature(msg_signature, timestamp, nonce, echostr)
        return self.decrypt(echostr).decode()

    def open_message(self, body: bytes, query: Mapping[str, str]) -> bytes:
        """The message XML of a POST, whatever the mode; checks every signature first.

        ``query`` is the request's query string (signature, timestamp, nonce,
        and in safe mode encrypt_type=aes and msg_signature).
        """
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        if query.get("encrypt_type", "raw") == "aes":
            return self.decrypt_message(body, msg_signature=query.get("msg_signature", ""),
                                        timestamp=timestamp, nonce=nonce)
        self.verify_signature(signature=query.get("signature", ""), timestamp=timestamp,
                              nonce=nonce)
        return body

    def decrypt_message(self, body: bytes, *, msg_signature: str, timestamp: str,
                        nonce: str) -> bytes:
        """Verify ``msg_signature`` over the envelope's ``Encrypt`` and decrypt it."""
        envelope = _child_texts(parse_xml(body))
        encrypted = envelope.get("Encrypt")
        if not encrypted:
            raise WeChatXmlError("safe-mode body has no Encrypt element")
        self._verify_msg_signature(msg_signature, timestamp, nonce, encrypted)
        return self.decrypt(encrypted)

    def encrypt_message(self, reply_xml: bytes | str, *, timestamp: str, nonce: str) -> bytes:
        """The safe-mode envelope for ``reply_xml`` (a reply, or a test message)."""
        for name, value in (("timestamp", timestamp), ("nonce", nonce)):
            if not _SAFE_QUERY_VALUE.fullmatch(value):
                raise ValueError(f"{name} must be 1-64 ASCII letters or digits")
        plaintext = reply_xml.encode() if isinstance(reply_xml, str) else reply_xml
        encrypted = self.encrypt(plaintext)
        signature = compute_signature(self._token, timestamp, nonce, encrypted)
        return (f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt>"
                f"<MsgSignature><![CDATA[{signature}]]></MsgSignature>"
                f"<TimeStamp>{timestamp}</TimeStamp>"
                f"<Nonce><![CDATA[{nonce}]]></Nonce></xml>").encode()

    def push_request(self, message_xml: bytes, *, timestamp: str, nonce: str, openid: str,
                     safe_mode: bool = True) -> tuple[dict[str, str], bytes]:
        """The query string and body WeChat would POST for ``message_xml`` (demos and tests).

        Safe mode encrypts the message (the envelope carries ``ToUserName`` and
        ``Encrypt``); plaintext mode sends it as is.
        """
        query = {"signature": compute_signature(self._token, timestamp, nonce),
                 "timestamp": timestamp, "nonce": nonce, "openid": openid}
        if not safe_mode:
            return query, message_xml
        encrypted = self.encrypt(message_xml)
        query |= {"encrypt_type": "aes",
                  "msg_signature": compute_signature(self._token, timestamp, nonce, encrypted)}
        to_user = _child_texts(parse_xml(message_xml)).get("ToUserName", "")
        body = (f"<xml><ToUserName>{_cdata(to_user)}</ToUserName>"
                f"<Encrypt>{_cdata(encrypted)}</Encrypt></xml>").encode()
        return query, body

    def encrypt(self, plaintext: bytes) -> str:
        """Base64 ciphertext of ``plaintext`` in the WeChat layout."""
        key = self._require_key()
        body = self._random_bytes(16) + struct.pack(">I", len(plaintext)) + plaintext + self._app_id
        encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
        return base64.b64encode(encryptor.update(_pad(body)) + encryptor.finalize()).decode()

    def decrypt(self, ciphertext_b64: str) -> bytes:
        """The message inside a base64 ciphertext; checks padding, length and AppID."""
        key = self._require_key()
        try:
            ciphertext = base64.b64decode(ciphertext_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise WeChatCryptoError("ciphertext is not valid base64") from exc
        if not ciphertext or len(ciphertext) % 16:
            raise WeChatCryptoError("ciphertext length is not a multiple of the AES block")
        decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
        body = _unpad(decryptor.update(ciphertext) + decryptor.finalize())
        if len(body) < 20:
            raise WeChatCryptoError("plaintext is too short")
        (length,) = struct.unpack(">I", body[16:20])
        if 20 + length > len(body):
            raise WeChatCryptoError("message length exceeds the plaintext")
        message, app_id = body[20:20 + length], body[20 + length:]
        if not hmac.compare_digest(app_id, self._app_id):
            raise WeChatAppIdError("message is addressed to another AppID")
        return message

    def _verify_msg_signature(self, msg_signature: str, timestamp: str, nonce: str,
                              encrypted: str) -> None:
        expected = compute_signature(self._token, timestamp, nonce, encrypted)
        if not hmac.compare_digest(expected.encode(), msg_signature.lower().encode()):
            raise WeChatSignatureError("msg_signature does not match")

    def _require_key(self) -> bytes:
        if self._key is None:
            raise WeChatCryptoError("safe mode is not configured (no EncodingAESKey)")
        return self._key


def text_message_xml(*, to_user: str, from_user: str, create_time: int, content: str,
                     msg_id: int | str) -> bytes:
    """A text message as WeChat pushes it (demos and tests)."""
    return (f"<xml><ToUserName>{_cdata(to_user)}</ToUserName>"
            f"<FromUserName>{_cdata(from_user)}</FromUserName>"
            f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content>{_cdata(content)}</Content><MsgId>{msg_id}</MsgId></xml>").encode()


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _aes_key(encoding_aes_key: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9]{43}", encoding_aes_key):
        raise ValueError("EncodingAESKey must be 43 ASCII letters or digits")
    return base64.b64decode(encoding_aes_key + "=")


def _pad(data: bytes) -> bytes:
    amount = BLOCK_SIZE - len(data) % BLOCK_SIZE
    return data + bytes([amount]) * amount


def _unpad(data: bytes) -> bytes:
    amount = data[-1]
    if not 1 <= amount <= BLOCK_SIZE or data[-amount:] != bytes([amount]) * amount:
        raise WeChatCryptoError("bad PKCS#7 padding")
    return data[:-amount]


def parse_xml(data: bytes) -> Element:
    """Parse WeChat XML safely; the root must be ``<xml>``."""
    if len(data) > MAX_XML_BYTES:
        raise WeChatXmlError(f"XML body larger than {MAX_XML_BYTES} bytes")
    try:
        root: Element = SafeElementTree.fromstring(data, forbid_dtd=True, forbid_entities=True,
                                          forbid_external=True)
    except defusedxml.DTDForbidden as exc:
        raise WeChatXmlSecurityError("XML with a DTD (DOCTYPE) is refused") from exc
    except defusedxml.EntitiesForbidden as exc:
        raise WeChatXmlSecurityError(f"XML entity declaration {exc.name!r} is refused") from exc
    except defusedxml.ExternalReferenceForbidden as exc:
        raise WeChatXmlSecurityError("XML external reference is refused") from exc
    except (ParseError, defusedxml.DefusedXmlException) as exc:
        raise WeChatXmlError(f"malformed XML: {exc}") from exc
    except (ValueError, LookupError) as exc:  # an encoding the parser cannot read: it was a 500
        raise WeChatXmlError(f"XML in an encoding other than UTF-8 or UTF-16: {exc}") from exc
    if root.tag != "xml":
        raise WeChatXmlError(f"root element is <{root.tag}>, expected <xml>")
    return root


def _child_texts(root: Element) -> dict[str, str]:
    texts: dict[str, str] = {}
    for child in root:
        texts[child.tag] = (child.text or "").strip()
        for grandchild in child:  # nested event details, e.g. ScanCodeInfo/ScanResult
            texts[f"{child.tag}.{grandchild.tag}"] = (grandchild.text or "").strip()
    return texts


@dataclass(frozen=True)
class WeChatMessage:
    """A message or event pushed by WeChat; ``fields`` holds every element's text."""

    to_user: str
    from_user: str
    create_time: int
    msg_type: str
    msg_id: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        value = self.fields.get(name)
        return value or None


def parse_message(xml_bytes: bytes) -> WeChatMessage:
    """Parse a decrypted (or plaintext-mode) message body."""
    fields = _child_texts(parse_xml(xml_bytes))
    required = ("ToUserName", "FromUserName", "CreateTime", "MsgType")
    missing = [name for name in required if not fields.get(name)]
    if missing:
        raise WeChatXmlError(f"message lacks {', '.join(missing)}")
    if not re.fullmatch(r"[0-9]{1,11}", fields["CreateTime"]):
        raise WeChatXmlError("CreateTime is not a Unix timestamp")
    return WeChatMessage(
        to_user=fields["ToUserName"],
        from_user=fields["FromUserName"],
        create_time=int(fields["CreateTime"]),
        msg_type=fields["MsgType"],
        msg_id=fields.get("MsgId") or None,
        fields=fields,
    )


def to_raw_post(message: WeChatMessage, *, source_id: str, author_salt: str,
                received_at: datetime, region: str | None = None, unit: str | None = None,
                ) -> RawPost:
    """Map a message to ``posts.raw``; the OpenID is replaced by a salted pseudonym.

    ``text`` carries the words the user sent: Content for text, Recognition for
    voice; other types keep their details in ``attributes`` and an empty text.
    """
    author = pseudonymize(author_salt, message.from_user, prefix="wx")
    msg_type = _normalized_type(message.msg_type)
    # Without MsgId (events) WeChat's own dedup key is FromUserName + CreateTime;
    # the pseudonym stands in for the OpenID so it never leaves this function.
    external_id = message.msg_id or f"{author}:{message.create_time}:{message.get('Event') or ''}"
    text = {"text": message.get("Content"), "voice": message.get("Recognition")}.get(msg_type)
    return RawPost(
        post_id=make_post_id(source_id, external_id),
        source=source_id,
        channel=Channel.WECHAT,
        external_id=external_id,
        author=author,
        msg_type=msg_type,
        title=_fit(message.get("Title"), MAX_TITLE_CHARS) if msg_type == "link" else None,
        text=_fit(text, MAX_TEXT_CHARS) or "",
        created_at=datetime.fromtimestamp(message.create_time, tz=UTC),
        received_at=received_at,
        region=region,
        unit=unit,
        url=_link(message.get("Url")) if msg_type == "link" else None,
        attributes=_attributes(message, msg_type),
    )


# WeChat drops a message refused with a 4xx once its retries are spent, and no one learns of it: a
# shared article whose title, link or summary was over the contract's bounds was refused (422) and
# the user's message lost. What does not fit is cut (a link that does not fit is left out).
def _fit(value: str | None, chars: int) -> str | None:
    return None if value is None else value[:chars]


def _link(url: str | None) -> str | None:
    return url if url is not None and len(url) <= MAX_URL_CHARS else None


def _normalized_type(msg_type: str) -> str:
    lowered = re.sub(r"[^a-z_]", "_", msg_type.strip().lower())[:32]
    return lowered if _MSG_TYPE.fullmatch(lowered) else "unknown"


_ATTRIBUTE_FIELDS: dict[str, dict[str, str]] = {
    "image": {"PicUrl": "pic_url", "MediaId": "media_id"},
    "voice": {"MediaId": "media_id", "Format": "format"},
    "video": {"MediaId": "media_id", "ThumbMediaId": "thumb_media_id"},
    "shortvideo": {"MediaId": "media_id", "ThumbMediaId": "thumb_media_id"},
    "location": {"Label": "label", "Scale": "scale"},
    "link": {"Description": "description"},
    "event": {"Event": "event", "EventKey": "event_key"},
}


def _attributes(message: WeChatMessage, msg_type: str) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {"account": message.to_user[:MAX_ATTRIBUTE_VALUE_CHARS]}
    if message.msg_id:
        attributes["msg_id"] = message.msg_id
    for element, key in _ATTRIBUTE_FIELDS.get(msg_type, {}).items():
        value = message.get(element)
        if value is not None:
            attributes[key] = value[:MAX_ATTRIBUTE_VALUE_CHARS]
    if msg_type == "voice":
        attributes["recognized"] = message.get("Recognition") is not None
    if msg_type == "location":
        # Two decimals (about 1 km) place an outage report without pinpointing a home.
        for element, key in (("Location_X", "latitude"), ("Location_Y", "longitude")):
            value = message.get(element)
            if value is not None and re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value):
                attributes[key] = round(float(value), 2)
    return attributes
