from __future__ import annotations

import base64
import hashlib
import itertools
import json
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from services.ingest.wechat import (
    BLOCK_SIZE,
    WeChatAppIdError,
    WeChatCrypto,
    WeChatCryptoError,
    WeChatSignatureError,
    WeChatXmlError,
    WeChatXmlSecurityError,
    compute_signature,
    parse_message,
    parse_xml,
    to_raw_post,
)
from yuqing.contracts import Channel, RawPost, make_post_id

FIXTURES = Path(__file__).parent / "fixtures"
VECTOR = json.loads((FIXTURES / "wechat_official_vector.json").read_text(encoding="utf-8"))
TOKEN, AES_KEY, APP_ID = VECTOR["token"], VECTOR["encoding_aes_key"], VECTOR["app_id"]
SALT = "wechat-salt-0123456789"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
RECEIVED = datetime(2026, 11, 28, 12, 16, tzinfo=UTC)


def crypto(app_id: str = APP_ID) -> WeChatCrypto:
    counter = itertools.count()
    return WeChatCrypto(TOKEN, AES_KEY, app_id,
                        random_bytes=lambda n: bytes([next(counter) % 256]) * n)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def envelope(encrypted: str) -> bytes:
    return (f"<xml><ToUserName><![CDATA[{APP_ID}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>").encode()


# ---- published vectors ---------------------------------------------------------------------


def test_official_vector_message_decrypts() -> None:
    case = VECTOR["message"]

    plaintext = crypto().decrypt_message(case["body"].encode(), msg_signature=case["msg_signature"],
                                         timestamp=case["timestamp"], nonce=case["nonce"])

    assert plaintext.decode() == case["plaintext"]
    message = parse_message(plaintext)
    assert (message.msg_type, message.msg_id, message.get("Content")) == (
        "text", "4561255354251345929", "hello")


def test_official_vector_echostr_decrypts() -> None:
    case = VECTOR["verify_url"]

    echo = crypto().decrypt_echostr(msg_signature=case["msg_signature"],
                                    timestamp=case["timestamp"], nonce=case["nonce"],
                                    echostr=case["echostr"])

    assert echo == case["plaintext"]


def test_official_vector_signature_is_sha1_of_sorted_parts() -> None:
    case = VECTOR["message"]
    encrypted = parse_xml(case["body"].encode()).findtext("Encrypt") or ""

    assert compute_signature(TOKEN, case["timestamp"], case["nonce"], encrypted) == case[
        "msg_signature"]


def test_official_vector_with_another_app_id_is_refused() -> None:
    case = VECTOR["message"]

    with pytest.raises(WeChatAppIdError) as caught:
        crypto("wx0000000000000000").decrypt_message(
            case["body"].encode(), msg_signature=case["msg_signature"],
            timestamp=case["timestamp"], nonce=case["nonce"])
    assert caught.value.status_code == 403


# ---- URL verification and plaintext mode ---------------------------------------------------


def test_url_verification_returns_echostr() -> None:
    signature = hashlib.sha1("".join(sorted([TOKEN, "1764332100", "nonce42"])).encode()).hexdigest()

    assert crypto().verify_url(signature=signature, timestamp="1764332100", nonce="nonce42",
                               echostr="8342159034") == "8342159034"


def test_url_verification_with_wrong_signature_is_refused() -> None:
    with pytest.raises(WeChatSignatureError):
        crypto().verify_url(signature="0" * 40, timestamp="1764332100", nonce="nonce42",
                            echostr="8342159034")


def test_plaintext_post_is_checked_by_signature() -> None:
    query = {"signature": compute_signature(TOKEN, "1764332100", "77"), "timestamp": "1764332100",
             "nonce": "77", "openid": OPENID}

    assert crypto().open_message(fixture("wechat_text.xml"), query) == fixture("wechat_text.xml")
    with pytest.raises(WeChatSignatureError):
        crypto().open_message(fixture("wechat_text.xml"), {**query, "nonce": "78"})


# ---- safe mode round trip ------------------------------------------------------------------


def test_encrypted_message_round_trips_through_open_message() -> None:
    plaintext = fixture("wechat_text.xml")
    sealed = crypto().encrypt_message(plaintext, timestamp="1764332100", nonce="1320562132")
    fields = {child.tag: child.text for child in parse_xml(sealed)}
    query = {"encrypt_type": "aes", "msg_signature": fields["MsgSignature"] or "",
             "timestamp": "1764332100", "nonce": "1320562132"}

    assert fields["TimeStamp"] == "1764332100"
    assert crypto().open_message(sealed, query) == plaintext


@pytest.mark.parametrize("size", [0, 1, 11, 12, 13, 44, 500])
def test_padding_fills_32_byte_blocks(size: int) -> None:
    message = b"x" * size
    ciphertext = base64.b64decode(crypto().encrypt(message))
    layout = 16 + 4 + size + len(APP_ID)

    assert len(ciphertext) % BLOCK_SIZE == 0
    assert len(ciphertext) == (layout // BLOCK_SIZE + 1) * BLOCK_SIZE
    assert crypto().decrypt(base64.b64encode(ciphertext).decode()) == message


def test_encrypt_message_refuses_values_that_would_break_the_xml() -> None:
    with pytest.raises(ValueError):
        crypto().encrypt_message(b"<xml/>", timestamp="1", nonce="]]><x>")


# ---- tampering -----------------------------------------------------------------------------


def flip(encrypted: str, index: int) -> str:
    raw = bytearray(base64.b64decode(encrypted))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_flipped_byte_fails_the_signature() -> None:
    encrypted = crypto().encrypt(fixture("wechat_text.xml"))
    signature = compute_signature(TOKEN, "1", "2", encrypted)

    with pytest.raises(WeChatSignatureError):
        crypto().decrypt_message(envelope(flip(encrypted, 40)), msg_signature=signature,
                                 timestamp="1", nonce="2")


def test_flipped_byte_under_a_valid_signature_fails_decryption() -> None:
    encrypted = crypto().encrypt(fixture("wechat_text.xml"))
    # Flipping the last byte of the second-to-last block flips the last padding byte.
    tampered = flip(encrypted, len(base64.b64decode(encrypted)) - 17)
    signature = compute_signature(TOKEN, "1", "2", tampered)

    with pytest.raises(WeChatCryptoError, match="padding"):
        crypto().decrypt_message(envelope(tampered), msg_signature=signature, timestamp="1",
                                 nonce="2")


def raw_encrypt(plaintext: bytes) -> str:
    key = base64.b64decode(AES_KEY + "=")
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plaintext) + encryptor.finalize()).decode()


def layout(message: bytes, app_id: bytes = APP_ID.encode()) -> bytes:
    return b"r" * 16 + struct.pack(">I", len(message)) + message + app_id


@pytest.mark.parametrize("padding", [b"\x00" * 32, b"\x21" * 32, b"\x05" * 4 + b"\x04\x05"])
def test_bad_padding_is_refused(padding: bytes) -> None:
    body = layout(b"hello")
    body += b"p" * ((-len(body) - len(padding)) % 16)

    with pytest.raises(WeChatCryptoError, match="padding"):
        crypto().decrypt(raw_encrypt(body + padding))


def test_length_beyond_the_plaintext_is_refused() -> None:
    body = b"r" * 16 + struct.pack(">I", 10_000) + b"hello" + APP_ID.encode()
    amount = 32 - len(body) % 32

    with pytest.raises(WeChatCryptoError, match="length"):
        crypto().decrypt(raw_encrypt(body + bytes([amount]) * amount))


def test_wrong_app_id_is_refused() -> None:
    sealed = WeChatCrypto(TOKEN, AES_KEY, "wx0000000000000000").encrypt(b"<xml/>")

    with pytest.raises(WeChatAppIdError):
        crypto().decrypt(sealed)


@pytest.mark.parametrize("ciphertext", ["not base64!", base64.b64encode(b"short").decode(), ""])
def test_malformed_ciphertext_is_refused(ciphertext: str) -> None:
    with pytest.raises(WeChatCryptoError):
        crypto().decrypt(ciphertext)


def test_safe_mode_without_key_is_refused() -> None:
    with pytest.raises(WeChatCryptoError, match="not configured"):
        WeChatCrypto(TOKEN, None, APP_ID).decrypt("AAAA")


def test_invalid_encoding_aes_key_is_refused() -> None:
    with pytest.raises(ValueError):
        WeChatCrypto(TOKEN, AES_KEY[:-1], APP_ID)


def test_envelope_without_encrypt_is_refused() -> None:
    with pytest.raises(WeChatXmlError, match="Encrypt"):
        crypto().decrypt_message(b"<xml><ToUserName>x</ToUserName></xml>", msg_signature="0",
                                 timestamp="1", nonce="2")


# ---- XML safety ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["xml_bomb.xml", "xml_external_entity.xml"])
def test_dangerous_xml_is_refused(name: str) -> None:
    with pytest.raises(WeChatXmlSecurityError, match="DTD"):
        parse_message(fixture(name))


@pytest.mark.parametrize(("body", "message"), [
    (b"<xml><ToUserName>a</ToUserName>", "malformed"),
    (b"<message/>", "root element"),
    (b"<xml><ToUserName>a</ToUserName></xml>", "lacks FromUserName"),
    (fixture("wechat_text.xml").replace(b"<CreateTime>1764332100", b"<CreateTime>yesterday"),
     "CreateTime"),
    (b"<xml>" + b" " * (256 * 1024) + b"</xml>", "larger than"),
    # the parser reads no multi-byte encoding but UTF-8 and UTF-16: these were answered 500
    ('<?xml version="1.0" encoding="GBK"?><xml><Content>停电</Content></xml>'.encode("gbk"),
     "encoding other than UTF-8"),
    (b'<?xml version="1.0" encoding="klingon"?><xml/>', "encoding other than UTF-8"),
])
def test_unexpected_xml_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(WeChatXmlError, match=message):
        parse_message(body)


# ---- mapping to posts.raw ------------------------------------------------------------------


def raw(name: str) -> RawPost:
    return to_raw_post(parse_message(fixture(name)), source_id="wechat-service", author_salt=SALT,
                       received_at=RECEIVED, region="柳塘镇", unit="柳塘供电所")


def test_text_message_becomes_a_post() -> None:
    post = raw("wechat_text.xml")

    assert post.channel is Channel.WECHAT
    assert post.msg_type == "text"
    assert post.text.startswith("柳塘镇新街口一带从下午三点停电")
    assert post.external_id == "24612345678901234"
    assert post.post_id == make_post_id("wechat-service", "24612345678901234")
    assert post.created_at == datetime.fromtimestamp(1_764_332_100, tz=UTC)
    assert (post.region, post.unit) == ("柳塘镇", "柳塘供电所")
    assert post.attributes["account"] == "gh_3f1b2c4d5e6f"


def test_openid_never_leaves_the_connector() -> None:
    for name in ("wechat_text.xml", "wechat_voice.xml", "wechat_location.xml",
                 "wechat_event.xml", "wechat_link.xml"):
        post = raw(name)
        assert OPENID not in post.model_dump_json()
        assert post.author is not None and post.author.startswith("wx-")


def test_same_user_gets_the_same_pseudonym() -> None:
    assert raw("wechat_text.xml").author == raw("wechat_voice.xml").author


def test_voice_recognition_becomes_text() -> None:
    post = raw("wechat_voice.xml")

    assert (post.msg_type, post.text) == ("voice", "请问电费怎么突然涨了这么多")
    assert post.attributes["recognized"] is True
    assert post.attributes["format"] == "amr"


def test_voice_without_recognition_has_empty_text() -> None:
    xml = fixture("wechat_voice.xml").replace(
        "<Recognition><![CDATA[请问电费怎么突然涨了这么多]]></Recognition>".encode(), b"")
    post = to_raw_post(parse_message(xml), source_id="wechat-service", author_salt=SALT,
                       received_at=RECEIVED)

    assert (post.msg_type, post.text, post.attributes["recognized"]) == ("voice", "", False)


def test_location_is_kept_coarse() -> None:
    post = raw("wechat_location.xml")

    assert (post.msg_type, post.text) == ("location", "")
    assert (post.attributes["latitude"], post.attributes["longitude"]) == (23.13, 113.36)
    assert post.attributes["label"] == "柳塘镇新街口"


def test_link_keeps_title_and_url() -> None:
    post = raw("wechat_link.xml")

    assert (post.msg_type, post.text) == ("link", "")
    assert post.title == "网传“下月起阶梯电价翻倍”？"
    assert post.url == "https://mp.weixin.qq.com/s/AbCdEf123"


def test_event_without_msg_id_uses_sender_and_time() -> None:
    post = raw("wechat_event.xml")

    assert (post.msg_type, post.text) == ("event", "")
    assert post.external_id == f"{post.author}:1764332280:CLICK"
    assert (post.attributes["event"], post.attributes["event_key"]) == ("CLICK", "REPORT_OUTAGE")


def test_unknown_message_type_is_normalised() -> None:
    xml = fixture("wechat_event.xml").replace(b"<![CDATA[event]]>", b"<![CDATA[MiniProgram-Page]]>")

    assert raw_from(xml).msg_type == "miniprogram_page"


def raw_from(xml: bytes) -> RawPost:
    return to_raw_post(parse_message(xml), source_id="wechat-service", author_salt=SALT,
                       received_at=RECEIVED)


def test_redelivered_message_keeps_its_post_id() -> None:
    assert raw("wechat_text.xml").post_id == raw("wechat_text.xml").post_id


def test_non_ascii_signatures_are_refused_not_crashed() -> None:
    crypto = WeChatCrypto("wxtoken2026", None, "wx5823bf96d3bd56c7")

    with pytest.raises(WeChatSignatureError):
        crypto.verify_url(signature="签名", timestamp="1", nonce="n", echostr="e")


def test_a_link_too_long_for_the_contract_is_kept_without_what_does_not_fit() -> None:
    # WeChat drops a message refused with a 4xx after its retries: a shared article whose link,
    # title or summary was over the contract's bounds was refused (422) and lost, the user's
    # message with it
    long_url = "https://mp.weixin.qq.com/s?__biz=" + "A" * 3_000
    xml = (fixture("wechat_link.xml")
           .replace(b"https://mp.weixin.qq.com/s/AbCdEf123", long_url.encode())
           .replace("网传".encode(), ("网传" * 600).encode())
           .replace(b"<Description><![CDATA[", ("<Description><![CDATA[" + "摘要" * 1_500).encode()))

    post = raw_from(xml)

    assert post.url is None
    assert post.title is not None and len(post.title) == 1_000 and post.title.startswith("网传网传")
    description = post.attributes["description"]
    assert isinstance(description, str) and len(description) == 2_000
