import asyncio
import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from services.alerts.notify import (
    FIRING_TTL,
    Notifier,
    RejectedError,
    RetryableError,
    alert_link,
    alertmanager_payload,
    check_response,
    dingtalk_payload,
    dingtalk_signed_url,
    idempotency_key,
    render_markdown,
    wecom_payload,
)
from yuqing.contracts import Alert, AlertExplanation, AlertKey, AlertState, Severity, Topic
from yuqing.contracts.codec import decode
from yuqing.topics import SCHEMAS_DIR

START = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


def _alert(state: AlertState = AlertState.FIRING) -> Alert:
    return Alert(
        alert_id="a" * 32, key=AlertKey(family="topic_region", topic=Topic.OUTAGE, region="青山乡"),
        state=state, severity=Severity.WARNING, score=0.87, window_start=START,
        window_end=START + timedelta(minutes=15), observed=40, expected=2.2,
        sample_post_ids=["b" * 32, "c" * 32],
        explanation=AlertExplanation(top_keywords=["停电", "来电"], top_sources=["app-main"],
                                     parents=["topic|topic=outage"], negative_share=0.95,
                                     summary="青山乡·停电舆情突增：15分钟内40条，预期2.2条"),
        emitted_at=START + timedelta(minutes=16),
    )


def test_markdown_tells_a_responder_what_happened_in_local_time():
    text = render_markdown(_alert())
    assert text.startswith("### 【舆情告警·警告·触发】青山乡·停电\n> 青山乡·停电舆情突增")
    assert "- 窗口：2026-11-25 12:00 – 2026-11-25 12:15（UTC+8）" in text
    assert "- 热词：停电、来电" in text and "- 负面占比：95%" in text and "b" * 32 in text


def test_wecom_and_dingtalk_payloads_are_markdown_messages():
    wecom = wecom_payload(_alert())
    assert wecom["msgtype"] == "markdown" and wecom["markdown"]["content"].startswith("### ")
    ding = dingtalk_payload(_alert(AlertState.RESOLVED))
    assert ding["msgtype"] == "markdown"
    assert ding["markdown"]["title"] == "【舆情告警·警告·已恢复】青山乡·停电"


def test_alertmanager_payload_is_a_list_of_alerts_with_labels_and_times():
    [firing] = alertmanager_payload(_alert())
    assert firing["labels"] == {"alertname": "YuqingSurge", "alert_id": "a" * 32, "family": "topic_region",
                                "severity": "warning", "team": "opinion", "service": "alerts",
                                "topic": "outage", "region": "青山乡"}
    assert firing["startsAt"] == START.isoformat()
    assert firing["endsAt"] == (_alert().emitted_at + FIRING_TTL).isoformat()
    assert firing["annotations"]["sample_post_ids"] == f"{'b' * 32},{'c' * 32}"
    resolved = alertmanager_payload(_alert(AlertState.RESOLVED))[-1]
    assert resolved["endsAt"] == (START + timedelta(minutes=15)).isoformat()


def test_dingtalk_signature_follows_the_robot_scheme():
    robot = "https://oapi.dingtalk.com/robot/send?access_token=t"
    url = dingtalk_signed_url(robot, "SEC", now_ms=1700000000000)
    query = parse_qs(urlsplit(url).query)
    expected = hmac.new(b"SEC", b"1700000000000\nSEC", hashlib.sha256).digest()
    assert query["access_token"] == ["t"] and query["timestamp"] == ["1700000000000"]
    assert base64.b64decode(query["sign"][0]) == expected


@pytest.mark.parametrize(("status", "body", "error"), [
    (200, {"errcode": 0}, None), (200, {}, None), (204, None, None),
    (503, None, RetryableError), (429, None, RetryableError), (400, None, RejectedError),
    (200, {"errcode": 45009, "errmsg": "busy"}, RetryableError),
    (200, {"errcode": -1, "errmsg": "system busy"}, RetryableError),  # 系统繁忙: try again
    (200, {"errcode": 93000, "errmsg": "invalid webhook url"}, RejectedError),
])
def test_check_response_tells_retryable_from_rejected(status, body, error):
    response = httpx.Response(status, json=body) if body is not None else httpx.Response(status)
    if error is None:
        check_response(response)
    else:
        with pytest.raises(error):
            check_response(response)


def _notifier(statuses: list[int], seen: list[httpx.Request], **kwargs) -> Notifier:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(statuses[min(len(seen), len(statuses)) - 1], json={"errcode": 0})

    return Notifier(url="http://hooks.test/send", fmt="wecom", transport=httpx.MockTransport(handler),
                    min_wait_s=0.0, max_wait_s=0.0, **kwargs)


def test_transient_failures_are_retried_until_sent():
    seen: list[httpx.Request] = []
    outcome = asyncio.run(_notifier([503, 502, 200], seen).deliver(_alert()))
    assert outcome == "sent" and len(seen) == 3
    assert json.loads(seen[0].content)["msgtype"] == "markdown"


def test_retries_are_bounded_and_rejections_are_not_retried():
    seen: list[httpx.Request] = []
    assert asyncio.run(_notifier([500], seen, max_attempts=4).deliver(_alert())) == "failed"
    assert len(seen) == 4
    seen.clear()
    assert asyncio.run(_notifier([404], seen).deliver(_alert())) == "rejected" and len(seen) == 1


def test_the_background_task_delivers_and_a_full_queue_drops():
    outcomes: list[str] = []

    async def scenario() -> None:
        notifier = _notifier([200], [], queue_size=1, on_outcome=outcomes.append)
        assert notifier.submit(_alert()) and not notifier.submit(_alert())
        task = asyncio.create_task(notifier.run())
        await asyncio.wait_for(notifier.queue.join(), timeout=5)
        task.cancel()

    asyncio.run(scenario())
    assert outcomes == ["dropped", "sent"]


def test_each_alert_is_done_once_whatever_its_outcome_and_a_queue_can_be_forgotten():
    # The worker forgets a notification from the desk's outbox once it is done (sent, given up
    # on, dropped), and forgets its queue when another worker takes the desk and its outbox.
    done: list[Alert] = []

    async def scenario() -> None:
        notifier = _notifier([404], [], queue_size=2, on_done=done.append)
        resolved = _alert(AlertState.RESOLVED)
        assert notifier.submit(_alert()) and notifier.submit(resolved) and not notifier.submit(resolved)
        assert done == [resolved]  # dropped
        task = asyncio.create_task(notifier.run())
        await asyncio.wait_for(notifier.queue.join(), timeout=5)
        assert done == [resolved, _alert(), resolved]  # rejected both
        notifier.submit(_alert())
        assert notifier.forget_queued() == 1 and notifier.queue.empty()
        task.cancel()

    asyncio.run(scenario())


@pytest.mark.parametrize("answer", [
    httpx.Response(200, text="<html><body>请先登录代理</body></html>", headers={"content-type": "text/html"}),
    httpx.Response(200, json={"status": "ok"}), httpx.Response(204), httpx.Response(200, json=[1])])
def test_a_robot_that_answers_without_its_errcode_did_not_take_the_message(answer: httpx.Response):
    # A group robot answers every message it takes with {"errcode": 0}. An answer without it (a
    # proxy's login page, another service at that address) was counted as sent, and the duty desk
    # never saw the alert; Alertmanager's own answer has no body, so it is read as before.
    def handler(request: httpx.Request) -> httpx.Response:
        return answer

    for fmt in ("wecom", "dingtalk"):
        robot = Notifier(url="http://hooks.test/send", fmt=fmt, transport=httpx.MockTransport(handler))
        assert asyncio.run(robot.deliver(_alert())) == "rejected"
    manager = Notifier(url="http://am.test/api/v2/alerts", fmt="alertmanager",
                       transport=httpx.MockTransport(lambda request: httpx.Response(200)))
    assert asyncio.run(manager.deliver(_alert())) == "sent"


def test_every_alert_example_renders_in_every_format():
    examples = sorted((SCHEMAS_DIR / "alerts" / "examples").glob("*.json"))
    assert examples
    for path in examples:
        alert = decode(Alert, path.read_bytes())
        assert render_markdown(alert).startswith("### 【舆情告警")
        assert wecom_payload(alert)["markdown"]["content"] and dingtalk_payload(alert)["markdown"]["title"]
        assert alertmanager_payload(alert)[0]["labels"]["alert_id"] == alert.alert_id


def test_a_resolved_alert_ends_every_severity_it_fired_with():
    # an escalated alert fired as warning, then as critical: Alertmanager holds one alert per
    # severity label, and the resolved event ended only the critical one, so the warning stayed
    # firing for a day after the surge was over
    escalated = _alert(AlertState.RESOLVED).model_copy(update={"severity": Severity.CRITICAL})

    ended = alertmanager_payload(escalated)

    assert [a["labels"]["severity"] for a in ended] == ["info", "warning", "critical"]
    assert {a["endsAt"] for a in ended} == {(START + timedelta(minutes=15)).isoformat()}
    assert all({**a["labels"], "severity": "x"} == {**ended[0]["labels"], "severity": "x"} for a in ended)
    [warning] = alertmanager_payload(_alert(AlertState.RESOLVED))[1:]
    assert warning["labels"]["severity"] == "warning"
    assert len(alertmanager_payload(_alert())) == 1  # firing: its own severity only


class _Robot:
    """A WeCom group robot: 20 messages a minute, errcode 45009 beyond; time is simulated."""

    def __init__(self, busy_until: float = 0.0) -> None:
        self.now, self.busy_until = 0.0, busy_until
        self.accepted: list[float] = []
        self.refused = 0

    async def sleep(self, seconds: float) -> None:
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def handler(self, request: httpx.Request) -> httpx.Response:
        recent = [t for t in self.accepted if t > self.now - 60]
        if self.now < self.busy_until or len(recent) >= 20:
            self.refused += 1
            return httpx.Response(200, json={"errcode": 45009, "errmsg": "api freq out of limit"})
        self.accepted.append(self.now)
        return httpx.Response(200, json={"errcode": 0, "errmsg": "ok"})

    def notifier(self) -> Notifier:
        return Notifier(url="http://hooks.test/send", fmt="wecom",
                        transport=httpx.MockTransport(self.handler), clock=self.clock, sleep=self.sleep)


def test_a_robot_is_sent_no_more_than_it_takes_a_minute():
    # A surge over many townships fires more alerts in a minute than a group robot takes (20 a
    # minute; DingTalk's then throttles the robot for ten minutes). The retries' back-off, 7.5 s
    # in all, ended inside the minute: the 21st alert on failed and was never sent.
    robot = _Robot()
    notifier = robot.notifier()

    async def send_all() -> list[str]:
        return [await notifier.deliver(_alert()) for _ in range(45)]

    assert asyncio.run(send_all()) == ["sent"] * 45
    assert robot.refused == 0 and robot.now >= 120


def test_a_busy_robot_is_tried_again_after_its_minute():
    robot = _Robot(busy_until=50.0)  # its minute began before this worker's first message
    assert asyncio.run(robot.notifier().deliver(_alert())) == "sent"
    assert robot.refused == 1 and robot.accepted == [pytest.approx(60.0, abs=1.0)]


def test_a_webhook_away_for_a_minute_gets_the_alert_with_the_default_retries():
    # Alertmanager restarting, a bridge redeployed: a minute or two without an answer. The default
    # five attempts spent 7.5 s of back-off, and every surge notified meanwhile failed for good.
    from services.alerts.settings import AlertsSettings

    robot = _Robot()

    def handler(request: httpx.Request) -> httpx.Response:
        if robot.now < 90:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200)

    notifier = Notifier(url="http://am.test/api/v2/alerts", fmt="alertmanager",
                        transport=httpx.MockTransport(handler),
                        max_attempts=AlertsSettings().webhook_max_attempts, sleep=robot.sleep)
    assert asyncio.run(notifier.deliver(_alert())) == "sent"


def test_an_alertmanager_alert_links_to_its_view_in_the_search_api():
    # Alertmanager shows generatorURL as the alert's source; the worker sent none, and a responder
    # had no way from the page or the chat message to the alert, its posts and its issues.
    link = alert_link("https://yuqing.example.org/", "a" * 32)
    assert link == f"https://yuqing.example.org/v1/alerts/{'a' * 32}"
    for state in AlertState:
        assert {a["generatorURL"] for a in alertmanager_payload(_alert(state), 8.0, link)} == {link}
    assert f"- 详情：[{link}]({link})" in wecom_payload(_alert(), 8.0, link)["markdown"]["content"]
    # the path is the search API's own alert view
    from services.search.views import router

    template = link.replace("https://yuqing.example.org", "").replace("a" * 32, "{alert_id}")
    assert template in {getattr(route, "path", None) for route in router.routes}


def test_without_a_public_search_url_no_link_is_sent():
    # not one pointing at localhost: Alertmanager would show a link that opens nothing
    assert alert_link(None, "a" * 32) is None
    assert all("generatorURL" not in a for a in alertmanager_payload(_alert(AlertState.RESOLVED)))
    assert "详情" not in render_markdown(_alert())


def test_the_notifier_posts_the_link_under_the_configured_search_url():
    from services.alerts.settings import AlertsSettings
    from services.alerts.worker import make_notifier

    settings = AlertsSettings(webhook_url="http://am.test/api/v2/alerts",
                              search_url="https://yuqing.example.org/opinion")
    configured = make_notifier(settings)
    assert configured is not None and configured.search_url == settings.search_url
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    notifier = Notifier(url="http://am.test/api/v2/alerts", fmt="alertmanager",
                        search_url=configured.search_url, transport=httpx.MockTransport(handler))
    assert asyncio.run(notifier.deliver(_alert())) == "sent"
    [body] = json.loads(seen[0].content)
    assert body["generatorURL"] == f"https://yuqing.example.org/opinion/v1/alerts/{'a' * 32}"


@pytest.mark.parametrize("url", ["yuqing.example.org", "ftp://yuqing.example.org", "https:// x",
                                 "https://yuqing.example.org/?tenant=1", "https://yuqing.example.org/#alerts"])
def test_a_search_url_that_is_no_web_address_is_refused_at_start(url: str):
    from pydantic import ValidationError

    from services.alerts.settings import AlertsSettings

    with pytest.raises(ValidationError, match="search_url"):
        AlertsSettings(search_url=url)
    assert AlertsSettings(search_url="").search_url is None


def test_every_resend_of_a_notification_carries_the_same_idempotency_key():
    # Delivery is at least once (a kill between a delivery and the next stored batch sends it
    # again from the outbox; a retry follows an answer that never came): the receiver tells a
    # resend by its key, the same on every send of one change of an alert.
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503 if len(seen) == 1 else 200)

    def notifier() -> Notifier:
        return Notifier(url="http://am.test/api/v2/alerts", fmt="alertmanager", min_wait_s=0.0,
                        max_wait_s=0.0, transport=httpx.MockTransport(handler))

    firing = _alert()
    assert asyncio.run(notifier().deliver(firing)) == "sent"  # retried once
    from_outbox = Alert.model_validate(firing.model_dump(mode="json"))  # as a restarted worker holds it
    assert asyncio.run(notifier().deliver(from_outbox)) == "sent"
    keys = {request.headers["Idempotency-Key"] for request in seen}
    assert len(seen) == 3 and keys == {idempotency_key(firing)}
    assert {json.loads(r.content)[0]["annotations"]["idempotency_key"] for r in seen} == keys
    # another change of the alert is another notification: resolved, escalated, posted again later
    others = [_alert(AlertState.RESOLVED), firing.model_copy(update={"severity": Severity.CRITICAL}),
              firing.model_copy(update={"emitted_at": firing.emitted_at + FIRING_TTL / 2})]
    assert len({idempotency_key(a) for a in [firing, *others]}) == 4


class _SlowReceiver:
    """A webhook that takes ``latency`` seconds to answer and keeps what it was sent; time is simulated."""

    def __init__(self, latency: float) -> None:
        self.now, self.latency = 0.0, latency
        self.received: list[httpx.Request] = []

    async def sleep(self, seconds: float) -> None:
        self.now += seconds

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.received.append(request)
        waited = request.extensions["timeout"]["read"]
        if waited < self.latency:
            self.now += waited
            raise httpx.ReadTimeout("timed out", request=request)
        self.now += self.latency
        return httpx.Response(200)

    def notifier(self) -> Notifier:
        return Notifier(url="http://am.test/api/v2/alerts", fmt="alertmanager", timeout_s=5.0,
                        transport=httpx.MockTransport(self.handler), clock=lambda: self.now,
                        sleep=self.sleep)


def test_a_receiver_slower_than_the_timeout_is_waited_for_longer_not_sent_every_retry():
    # A webhook that answers in 12 s, with a 5 s timeout, received all 12 attempts of every alert.
    receiver = _SlowReceiver(latency=12.0)
    notifier = receiver.notifier()
    assert asyncio.run(notifier.deliver(_alert())) == "sent"
    assert [r.extensions["timeout"]["read"] for r in receiver.received] == [5.0, 10.0, 20.0]
    assert len({r.headers["Idempotency-Key"] for r in receiver.received}) == 1
    # the next alert is waited for as long as the receiver took: one send
    assert asyncio.run(notifier.deliver(_alert(AlertState.RESOLVED))) == "sent"
    assert len(receiver.received) == 4
    # a receiver that answers in time again brings the wait back to the configured timeout
    receiver.latency = 1.0
    asyncio.run(notifier.deliver(_alert()))
    asyncio.run(notifier.deliver(_alert()))
    assert receiver.received[-1].extensions["timeout"]["read"] == 5.0
    # bounded: a receiver that never answers is waited for at most 30 s an attempt
    silent = _SlowReceiver(latency=float("inf"))
    assert asyncio.run(silent.notifier().deliver(_alert())) == "failed"
    assert max(r.extensions["timeout"]["read"] for r in silent.received) == 30.0
    assert len(silent.received) == 12 and silent.now < 9 * 60


def test_a_long_message_is_cut_to_the_bytes_a_robot_takes_and_keeps_the_alert_id():
    # A WeCom robot refuses markdown over 4,096 bytes of UTF-8. The message was cut to 3,000
    # characters, up to 9,000 bytes of Chinese: a surge folding many townships' alerts was refused
    # (rejected), and the duty desk's group never saw it.
    alert = _alert().model_copy(update={"explanation": _alert().explanation.model_copy(update={
        "parents": [f"topic_region|topic=outage|region=第{k}号新建安置小区所在乡镇" for k in range(200)]})})
    assert len("，".join(alert.explanation.parents).encode()) > 3 * 4096  # before the cut
    for payload in (wecom_payload(alert)["markdown"]["content"], dingtalk_payload(alert)["markdown"]["text"]):
        assert len(payload.encode()) <= 4096
        assert payload.startswith("### 【舆情告警") and payload.endswith(f"- 告警编号：{alert.alert_id}")
        assert "\ufffd" not in payload  # cut between characters
