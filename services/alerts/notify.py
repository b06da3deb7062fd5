"""Alert notifications to a webhook, off the stream's path.

Three payload formats (pure functions, tested on their own):

* ``wecom``: a WeCom (企业微信) group robot markdown message;
* ``dingtalk``: a DingTalk (钉钉) robot markdown message, signed when a secret is set;
* ``alertmanager``: the list body of Alertmanager's ``POST /api/v2/alerts``, so
  alerts can be routed, grouped and silenced there.

:class:`Notifier` takes alerts on a bounded queue and delivers them from a
background task, retrying transient failures (connection errors, 5xx, 408, 429,
robot rate limits) with exponential back-off; a 429 waits its Retry-After, and a
group robot is sent at most 20 messages a minute (a busy one waits its minute). The stream never waits for it:
when the queue is full the notification is dropped and counted.

Delivery is at least once: a worker killed between a delivery and storing that it was done
sends it again, and so does a retry after an answer that never came. Every notification carries
its :func:`idempotency_key`, the same on every resend of one change of an alert, as the
``Idempotency-Key`` header (and, to Alertmanager, the ``idempotency_key`` annotation), for the
receiver to drop what it already has. A receiver that takes longer than the timeout to answer
is waited for twice as long on the next attempt (up to ``MAX_TIMEOUT_S``), so that it receives
a notification a few times rather than once per retry.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from services.alerts.explain import subject
from services.alerts.outbox import transition_id
from yuqing.contracts import Alert, AlertState, Severity

log = logging.getLogger(__name__)

SEVERITY_NAMES = {Severity.INFO: "提示", Severity.WARNING: "警告", Severity.CRITICAL: "严重"}
STATE_NAMES = {AlertState.FIRING: "触发", AlertState.RESOLVED: "已恢复"}
# Alertmanager resolves an alert that is not re-sent by its endsAt; the worker posts a firing
# alert again every half of this while it fires, and the resolved event ends it.
FIRING_TTL = timedelta(hours=24)
# A WeCom robot refuses markdown over 4,096 bytes of UTF-8: a message is cut to this many bytes
# (it was cut to 3,000 characters, up to 9,000 bytes of Chinese, and the robot refused the alert).
MAX_MARKDOWN_BYTES = 4000
# the outcome label of yuqing_alerts_notifications_total
OUTCOMES = ("sent", "rejected", "failed", "dropped")
RETRY_STATUS = {408, 429}
ROBOT_BUSY_CODES = {45009, 130101}
# WeCom's and DingTalk's -1, 系统繁忙 (the robot service is unavailable for a moment; both say to
# try again): it was taken for a refusal, and the alert was never sent.
ROBOT_UNAVAILABLE_CODES = {-1}
# A group robot takes 20 messages a minute (WeCom answers 45009 beyond, DingTalk 130101 and then
# throttles the robot for ten minutes): a robot is sent no more, and a busy one waits its minute.
ROBOT_FORMATS = {"wecom", "dingtalk"}
ROBOT_PER_MINUTE, ROBOT_MINUTE_S = 20, 60.0
MAX_RETRY_AFTER_S = 300.0
IDEMPOTENCY_HEADER = "Idempotency-Key"
# A receiver slower than the timeout still gets each attempt: the wait for its answer doubles
# after each attempt that timed out waiting for it, up to this, and falls back once it answers
# within the configured timeout.
MAX_TIMEOUT_S = 30.0


class RetryableError(RuntimeError):
    pass


class RateLimitedError(RetryableError):
    """Tried too often: the next attempt waits at least ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RejectedError(RuntimeError):
    pass


def _retry_after(response: httpx.Response) -> float:
    """A 429's Retry-After in seconds (a date, or none, counts as a robot's minute)."""
    try:
        return min(max(float(response.headers.get("retry-after", "")), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        return ROBOT_MINUTE_S


def _local(moment: datetime, utc_offset_hours: float) -> str:
    return moment.astimezone(timezone(timedelta(hours=utc_offset_hours))).strftime("%Y-%m-%d %H:%M")


def alert_link(search_url: str | None, alert_id: str) -> str | None:
    """The alert's view in the search API (``GET /v1/alerts/{id}``) under its public base URL, for
    a responder to open; None without one: a link to the worker's own host opens nothing."""
    if not search_url:
        return None
    return f"{search_url.rstrip('/')}/v1/alerts/{quote(alert_id, safe='')}"


def idempotency_key(alert: Alert) -> str:
    """The key of one change of an alert (it fired, escalated, resolved, or a firing alert was
    posted again at a later time): the same on every resend of it, from the worker that first
    sent it or from the outbox of the one that took over."""
    return transition_id(alert)


def title(alert: Alert) -> str:
    return f"【舆情告警·{SEVERITY_NAMES[alert.severity]}·{STATE_NAMES[alert.state]}】{subject(alert.key)}"


def render_markdown(alert: Alert, utc_offset_hours: float = 8.0, link: str | None = None) -> str:
    """The alert as a short markdown message for people, with ``link`` to its view if set."""
    ex = alert.explanation
    lines = [f"### {title(alert)}"]
    if ex.summary:
        lines.append(f"> {ex.summary}")
    window = f"{_local(alert.window_start, utc_offset_hours)} – {_local(alert.window_end, utc_offset_hours)}"
    lines += [f"- 窗口：{window}（UTC{utc_offset_hours:+g}）",
              f"- 观测/预期：{alert.observed:.0f} / {alert.expected:.1f}（评分 {alert.score:.2f}）"]
    if link:  # before the lists that may be cut at the length limit
        lines.append(f"- 详情：[{link}]({link})")
    if ex.top_keywords:
        lines.append("- 热词：" + "、".join(ex.top_keywords))
    if ex.top_sources:
        lines.append("- 来源：" + "、".join(ex.top_sources))
    if ex.negative_share is not None:
        lines.append(f"- 负面占比：{ex.negative_share:.0%}")
    if ex.parents:
        lines.append("- 关联：" + "，".join(ex.parents))
    if alert.sample_post_ids:
        lines.append("- 样例帖子：" + "，".join(alert.sample_post_ids))
    ending = f"\n- 告警编号：{alert.alert_id}"  # kept whole when the lists before it are cut
    return _cut("\n".join(lines), MAX_MARKDOWN_BYTES - len(ending.encode())) + ending


def _cut(text: str, max_bytes: int) -> str:
    """``text`` within ``max_bytes`` of UTF-8, cut between characters."""
    return text.encode()[:max_bytes].decode(errors="ignore")


def wecom_payload(alert: Alert, utc_offset_hours: float = 8.0, link: str | None = None
                  ) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"content": render_markdown(alert, utc_offset_hours, link)}}


def dingtalk_payload(alert: Alert, utc_offset_hours: float = 8.0, link: str | None = None
                     ) -> dict[str, Any]:
    return {"msgtype": "markdown",
            "markdown": {"title": title(alert), "text": render_markdown(alert, utc_offset_hours, link)}}


def alertmanager_payload(alert: Alert, utc_offset_hours: float = 8.0, link: str | None = None
                         ) -> list[dict[str, Any]]:
    """One Alertmanager alert; a resolved event ends it at the window's end. It carries the labels
    every alert carries (docs/operations.md): ``team`` routes it to the duty desk.

    Alertmanager tells alerts apart by their labels, severity included: an alert that escalated
    fired once per severity, so its resolved event ends every severity up to its last one (it
    ended the last one only, and a warning stayed firing for a day after the surge was over).

    ``link`` (:func:`alert_link`) is the ``generatorURL`` Alertmanager shows as the alert's source;
    left out without one (Alertmanager's API takes only an absolute URI there)."""
    key = alert.key
    labels = {"alertname": "YuqingSurge", "alert_id": alert.alert_id, "family": key.family,
              "severity": alert.severity.value, "team": "opinion", "service": "alerts"}
    labels.update({name: str(value) for name, value in (
        ("topic", key.topic.value if key.topic else None), ("region", key.region),
        ("source", key.source), ("cluster", key.cluster)) if value})
    ends = alert.window_end if alert.state is AlertState.RESOLVED else alert.emitted_at + FIRING_TTL
    ex = alert.explanation
    annotations = {"summary": ex.summary or title(alert),
                   "description": render_markdown(alert, utc_offset_hours, link),
                   "observed": f"{alert.observed:g}", "expected": f"{alert.expected:.2f}",
                   "score": f"{alert.score:.2f}", "top_keywords": ",".join(ex.top_keywords),
                   "top_sources": ",".join(ex.top_sources),
                   "sample_post_ids": ",".join(alert.sample_post_ids),
                   "idempotency_key": idempotency_key(alert)}
    severities = [alert.severity]
    if alert.state is AlertState.RESOLVED:
        severities = list(Severity)[:list(Severity).index(alert.severity) + 1]
    source = {"generatorURL": link} if link else {}
    return [{"labels": {**labels, "severity": severity.value}, "annotations": annotations,
             "startsAt": alert.window_start.isoformat(), "endsAt": ends.isoformat(), **source}
            for severity in severities]


PAYLOADS: dict[str, Callable[[Alert, float, str | None], Any]] = {
    "wecom": wecom_payload, "dingtalk": dingtalk_payload, "alertmanager": alertmanager_payload,
}


def dingtalk_signed_url(url: str, secret: str, now_ms: int | None = None) -> str:
    """DingTalk robots with 加签: HMAC-SHA256 of ``timestamp\\nsecret``, base64, URL-encoded."""
    timestamp = now_ms if now_ms is not None else int(time.time() * 1000)
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    sign = quote_plus(base64.b64encode(digest).decode())
    return f"{url}{'&' if '?' in url else '?'}timestamp={timestamp}&sign={sign}"


def check_response(response: httpx.Response, *, robot: bool = False) -> None:
    """Raise RetryableError or RejectedError unless the webhook accepted the message.

    A group robot (``robot``) takes a message with ``{"errcode": 0}``: an answer without it (a
    proxy's login page, another service at the address) was counted as sent."""
    status = response.status_code
    if status == 429:
        raise RateLimitedError("HTTP 429", _retry_after(response))
    if status >= 500 or status in RETRY_STATUS:
        raise RetryableError(f"HTTP {status}")
    if status >= 400:
        raise RejectedError(f"HTTP {status}: {response.text[:200]}")
    if status >= 300:
        # The POST is not repeated at the new address (a 301 or 302 would even turn it into
        # a GET), so the message went nowhere: the configured URL must be the final one.
        location = response.headers.get("location", "")[:200]
        raise RejectedError(f"HTTP {status}: redirected to {location!r}; set that as the URL")
    try:
        body = response.json()
    except ValueError:
        body = None
    if robot and not (isinstance(body, dict) and "errcode" in body):
        raise RejectedError(f"HTTP {status} without the robot's errcode: {response.text[:200]!r}")
    code = body.get("errcode", 0) if isinstance(body, dict) else 0
    if code in ROBOT_BUSY_CODES:
        raise RateLimitedError(f"robot busy: errcode {code}", ROBOT_MINUTE_S)
    if code in ROBOT_UNAVAILABLE_CODES:
        raise RetryableError(f"robot unavailable: errcode {code}: {body.get('errmsg', '')}")
    if code:
        raise RejectedError(f"errcode {code}: {body.get('errmsg', '')}")


class Notifier:
    """Delivers alerts to one webhook from a background task, with bounded retries."""

    def __init__(
        self, *, url: str, fmt: str, secret: str | None = None, search_url: str | None = None,
        timeout_s: float = 5.0,
        max_attempts: int = 12, queue_size: int = 1000, utc_offset_hours: float = 8.0,
        transport: httpx.AsyncBaseTransport | None = None, min_wait_s: float = 0.5,
        max_wait_s: float = 30.0,
        on_outcome: Callable[[str], None] | None = None,
        on_done: Callable[[Alert], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.url, self.fmt, self.secret, self.search_url = url, fmt, secret, search_url
        self.max_attempts, self.utc_offset_hours = max_attempts, utc_offset_hours
        self.min_wait_s, self.max_wait_s = min_wait_s, max_wait_s
        self.timeout_s = timeout_s
        self._timeout = timeout_s  # the wait for the next answer (longer for a slow receiver)
        self.queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=queue_size)
        self._client = httpx.AsyncClient(timeout=timeout_s, transport=transport)
        self._on_outcome = on_outcome or (lambda outcome: None)
        # an alert's notification is over (sent, dropped, or given up on)
        self._on_done = on_done or (lambda alert: None)
        self._clock, self._sleep = clock, sleep
        self._sent_at: deque[float] = deque()  # a robot's messages of the last minute

    def submit(self, alert: Alert) -> bool:
        """Queue an alert without waiting; False (and counted) if the queue is full."""
        try:
            self.queue.put_nowait(alert)
        except asyncio.QueueFull:
            log.warning("notification queue full; dropping alert %s", alert.alert_id)
            self._on_outcome("dropped")
            self._on_done(alert)
            return False
        return True

    def forget_queued(self) -> int:
        """Drop the notifications waiting in the queue (not the one being delivered); how many."""
        dropped = 0
        while not self.queue.empty():
            self.queue.get_nowait()
            self.queue.task_done()
            dropped += 1
        return dropped

    async def run(self) -> None:
        """Deliver queued alerts until cancelled."""
        try:
            while True:
                alert = await self.queue.get()
                self._on_outcome(await self._deliver_or_fail(alert))
                self._on_done(alert)
                self.queue.task_done()
        finally:
            await self._client.aclose()

    async def _deliver_or_fail(self, alert: Alert) -> str:
        """One alert's outcome; an error nobody foresaw fails that alert, never the task,
        which would leave every later alert queued until dropped."""
        try:
            return await self.deliver(alert)
        except Exception:
            log.exception("webhook delivery of alert %s failed", alert.alert_id)
            return "failed"

    async def deliver(self, alert: Alert) -> str:
        """Send one alert, retrying transient failures; returns the outcome."""
        body = PAYLOADS[self.fmt](alert, self.utc_offset_hours, alert_link(self.search_url, alert.alert_id))
        key = idempotency_key(alert)
        backoff = wait_exponential(multiplier=self.min_wait_s, max=self.max_wait_s)

        def wait(state: RetryCallState) -> float:
            failure = state.outcome.exception() if state.outcome else None
            limited = failure.retry_after if isinstance(failure, RateLimitedError) else 0.0
            return max(backoff(state), limited)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts), reraise=True, wait=wait, sleep=self._sleep,
            retry=retry_if_exception_type((RetryableError, httpx.TransportError)))
        try:
            async for attempt in retrying:
                with attempt:
                    await self._pace()
                    check_response(await self._post(body, key), robot=self.fmt in ROBOT_FORMATS)
        except RejectedError as exc:
            log.error("webhook rejected alert %s: %s", alert.alert_id, exc)
            return "rejected"
        except (RetryableError, httpx.HTTPError) as exc:
            # HTTPError beyond TransportError: an answer that cannot be read (DecodingError).
            log.error("webhook failed for alert %s (attempts: at most %d): %s",
                      alert.alert_id, self.max_attempts, exc)
            return "failed"
        return "sent"

    async def _post(self, body: Any, key: str) -> httpx.Response:
        started = self._clock()
        try:
            response = await self._client.post(self._target(), json=body, headers={IDEMPOTENCY_HEADER: key},
                                               timeout=self._timeout)
        except (httpx.ReadTimeout, httpx.WriteTimeout):
            # The receiver may have the notification and be slow to answer: it got every retry,
            # 12 copies of one alert. (A connection never made delivered nothing: no change.)
            self._timeout = min(2 * self._timeout, max(MAX_TIMEOUT_S, self.timeout_s))
            raise
        if self._clock() - started <= self.timeout_s:
            self._timeout = self.timeout_s
        return response

    async def _pace(self) -> None:
        """Wait until a robot takes another message this minute (other webhooks: at once)."""
        if self.fmt not in ROBOT_FORMATS:
            return
        sent = self._sent_at
        while sent and sent[0] <= self._clock() - ROBOT_MINUTE_S:
            sent.popleft()
        if len(sent) >= ROBOT_PER_MINUTE:
            await self._sleep(sent[0] + ROBOT_MINUTE_S - self._clock())
            sent.popleft()
        sent.append(self._clock())

    def _target(self) -> str:
        if self.fmt == "dingtalk" and self.secret:
            return dingtalk_signed_url(self.url, self.secret)
        return self.url
