from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.ingest.app_webhook import (
    HEADER_REQUEST_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    AppRequestVerifier,
    PayloadError,
    ReplayError,
    RequestInProgressError,
    SignatureError,
    StaleRequestError,
    feedback_to_raw_post,
    parse_feedback,
    sign_app_request,
    signed_headers,
)
from yuqing.contracts import Channel, make_post_id

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "app-main-hmac-secret-0123456789abcdef"
OLD_SECRET = "app-main-previous-secret-fedcba9876543210"
NOW = 1_764_332_100
BODY = (FIXTURES / "app_feedback.json").read_bytes()


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def verifier(clock: FakeClock | None = None) -> AppRequestVerifier:
    return AppRequestVerifier(replay_window_s=300, clock=clock or FakeClock())


def headers(body: bytes = BODY, *, timestamp: int = NOW, request_id: str = "req-0001",
            secret: str = SECRET) -> dict[str, str]:
    return signed_headers(secret, body, timestamp=timestamp, request_id=request_id)


def test_signature_is_hmac_sha256_over_timestamp_request_id_and_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1764332100.req-1." + BODY, hashlib.sha256).hexdigest()

    assert sign_app_request(SECRET, BODY, 1_764_332_100, "req-1") == "sha256=" + expected
    assert sign_app_request(SECRET.encode(), BODY, "1764332100", "req-1") == "sha256=" + expected


def test_a_captured_request_resent_under_a_new_id_does_not_verify() -> None:
    sent = headers(request_id="req-0001")
    sent[HEADER_REQUEST_ID] = "req-0002"

    with pytest.raises(SignatureError):
        verifier().verify(source_id="app-main", secrets=[SECRET], headers=sent, body=BODY)


def test_valid_request_is_accepted() -> None:
    verified = verifier().verify(source_id="app-main", secrets=[SECRET], headers=headers(),
                                 body=BODY)

    assert verified.request_id == "req-0001"
    assert verified.timestamp == NOW


def test_header_names_are_case_insensitive_and_hex_case_is_ignored() -> None:
    sent = {key.lower(): value for key, value in headers().items()}
    sent[HEADER_SIGNATURE.lower()] = sent[HEADER_SIGNATURE.lower()].upper().replace("SHA256", "sha256")

    verifier().verify(source_id="app-main", secrets=[SECRET], headers=sent, body=BODY)


def test_previous_secret_is_accepted_during_rotation() -> None:
    verifier().verify(source_id="app-main", secrets=[SECRET, OLD_SECRET],
                      headers=headers(secret=OLD_SECRET), body=BODY)


@pytest.mark.parametrize("tamper", ["body", "secret", "timestamp"])
def test_tampered_request_is_rejected(tamper: str) -> None:
    sent, body = headers(), BODY
    if tamper == "body":
        body = BODY.replace(b"218", b"21")
    elif tamper == "secret":
        sent = headers(secret="some-other-secret-0123456789abcdef")
    else:
        sent[HEADER_TIMESTAMP] = str(NOW + 1)

    with pytest.raises(SignatureError) as caught:
        verifier().verify(source_id="app-main", secrets=[SECRET], headers=sent, body=body)
    assert caught.value.status_code == 401


@pytest.mark.parametrize(("header", "value"), [
    (HEADER_SIGNATURE, None),
    (HEADER_TIMESTAMP, None),
    (HEADER_REQUEST_ID, None),
    (HEADER_SIGNATURE, "md5=abc"),
    (HEADER_SIGNATURE, "sha256=" + "0" * 63),
    (HEADER_TIMESTAMP, "2026-11-28T12:00:00Z"),
    (HEADER_TIMESTAMP, "-1"),
    (HEADER_REQUEST_ID, "has spaces"),
    (HEADER_REQUEST_ID, "x" * 129),
])
def test_missing_or_malformed_headers_are_rejected(header: str, value: str | None) -> None:
    sent = headers()
    if value is None:
        del sent[header]
    else:
        sent[header] = value

    with pytest.raises(SignatureError, match=header):
        verifier().verify(source_id="app-main", secrets=[SECRET], headers=sent, body=BODY)


@pytest.mark.parametrize("skew_s", [-301, 301, -10_000])
def test_timestamp_outside_the_replay_window_is_rejected(skew_s: int) -> None:
    sent = headers(timestamp=NOW + skew_s)

    with pytest.raises(StaleRequestError) as caught:
        verifier().verify(source_id="app-main", secrets=[SECRET], headers=sent, body=BODY)
    assert caught.value.status_code == 401


@pytest.mark.parametrize("skew_s", [-300, 0, 300])
def test_timestamp_at_the_edge_of_the_window_is_accepted(skew_s: int) -> None:
    verifier().verify(source_id="app-main", secrets=[SECRET],
                      headers=headers(timestamp=NOW + skew_s), body=BODY)


def test_per_source_window_overrides_the_default() -> None:
    with pytest.raises(StaleRequestError):
        verifier().verify(source_id="app-main", secrets=[SECRET],
                          headers=headers(timestamp=NOW - 100), body=BODY, replay_window_s=60)


def test_reused_request_id_is_a_replay() -> None:
    checker = verifier()
    checker.verify(source_id="app-main", secrets=[SECRET], headers=headers(), body=BODY)
    checker.accepted(source_id="app-main", request_id="req-0001")

    with pytest.raises(ReplayError) as caught:
        checker.verify(source_id="app-main", secrets=[SECRET], headers=headers(), body=BODY)
    assert caught.value.status_code == 409


def test_a_request_id_whose_first_attempt_is_unanswered_is_not_yet_a_replay() -> None:
    checker = verifier()
    checker.verify(source_id="app-main", secrets=[SECRET], headers=headers(), body=BODY)

    with pytest.raises(RequestInProgressError) as caught:
        checker.verify(source_id="app-main", secrets=[SECRET], headers=headers(), body=BODY)
    assert caught.value.status_code == 503
    checker.release(source_id="app-main", request_id="req-0001")  # the first attempt failed
    checker.verify(source_id="app-main", secrets=[SECRET], headers=headers(), body=BODY)


def test_bad_signature_does_not_burn_the_request_id() -> None:
    checker = verifier()
    forged = headers(secret="attacker-guess-0123456789abcdef0123")
    with pytest.raises(SignatureError):
        checker.verify(source_id="app-main", secrets=[SECRET], headers=forged, body=BODY)

    checker.verify(source_id="app-main", secrets=[SECRET], headers=headers(), body=BODY)


def test_request_ids_are_scoped_per_source() -> None:
    checker = verifier()
    checker.verify(source_id="app-main", secrets=[SECRET], headers=headers(), body=BODY)

    checker.verify(source_id="app-pilot", secrets=[SECRET], headers=headers(), body=BODY)


def test_released_request_id_can_be_retried() -> None:
    checker = verifier()
    checker.verify(source_id="app-main", secrets=[SECRET], headers=headers(), body=BODY)
    checker.release(source_id="app-main", request_id="req-0001")

    checker.verify(source_id="app-main", secrets=[SECRET], headers=headers(), body=BODY)


def test_request_id_is_remembered_as_long_as_a_timestamp_can_be_fresh() -> None:
    clock = FakeClock()
    checker = verifier(clock)
    checker.verify(source_id="app-main", secrets=[SECRET],
                   headers=headers(timestamp=NOW + 300), body=BODY)
    checker.accepted(source_id="app-main", request_id="req-0001")

    clock.now += 599
    with pytest.raises(ReplayError):
        checker.verify(source_id="app-main", secrets=[SECRET],
                       headers=headers(timestamp=NOW + 300), body=BODY)


def test_feedback_maps_to_raw_post() -> None:
    received = datetime(2026, 11, 28, 12, 16, tzinfo=UTC)

    post = feedback_to_raw_post(parse_feedback(BODY), source_id="app-main", received_at=received,
                                default_region="城关镇", default_unit="默认供电所")

    assert post.post_id == make_post_id("app-main", "fb-20261128-000123")
    assert post.channel is Channel.APP
    assert post.author == "u_7f3a9c21e0"
    assert post.text.startswith("这个月电费218")
    assert post.title == "电费异常"
    assert post.created_at == datetime(2026, 11, 28, 12, 15, tzinfo=UTC)
    assert post.received_at == received
    assert (post.region, post.unit) == ("城关镇", "城关供电所")
    assert post.attributes == {"app_version": "5.12.0", "platform": "android",
                               "device": "HUAWEI Mate 60", "category": "电费电价",
                               "attachment_count": 1}


def test_attachment_only_feedback_is_accepted() -> None:
    data = {"feedback_id": "fb-2", "created_at": "2026-11-28T20:15:00+08:00",
            "attachment_count": 2}

    post = feedback_to_raw_post(parse_feedback(json.dumps(data).encode()), source_id="app-main",
                                received_at=datetime.now(UTC))

    assert (post.text, post.msg_type) == ("", "attachment")


def mutated(**changes: object) -> bytes:
    data = json.loads(BODY)
    data.update(changes)
    return json.dumps({k: v for k, v in data.items() if v is not None}).encode()


@pytest.mark.parametrize(("body", "field"), [
    (mutated(created_at="2026-11-28 20:15:00"), "created_at"),
    (mutated(user="13812345678"), "user"),
    (mutated(user="44010619900101123X"), "user"),
    (mutated(feedback_id="fb 1"), "feedback_id"),
    (mutated(feedback_id=None), "feedback_id"),
    (mutated(content="", attachment_count=0), "<body>"),
    (mutated(region="区" * 65), "region"),
])
def test_invalid_feedback_reports_the_field(body: bytes, field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_feedback(body)

    assert caught.value.status_code == 422
    assert field in [error["field"] for error in caught.value.errors]


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", "\ufeff{}".encode("utf-16")])
def test_body_that_is_not_a_json_object_is_rejected(body: bytes) -> None:
    with pytest.raises(PayloadError):
        parse_feedback(body)
