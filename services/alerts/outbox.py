"""The webhook notifications the desk holds until delivered (pure).

The alerts a batch publishes wait in :attr:`Desk.outbox <services.alerts.state.Desk>`, stored with
the batch, so that a restarted worker sends those its predecessor did not deliver; each leaves
once delivered or given up on. An open firing alert keeps the last message notified
(:attr:`OpenAlert.notified <services.alerts.state.OpenAlert>`), to be posted again to
Alertmanager before the ``endsAt`` that message gave it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta

from services.alerts.state import Desk
from yuqing.contracts import Alert, AlertState

# Notifications held until delivered, at most (the latest): the desk is one changelog message,
# which the broker takes up to YUQING_KAFKA_MAX_MESSAGE_BYTES (1,000,000 by default) and which
# holds the tracker, the open alerts and the issue merges too. An alert is 0.5 to 2 KB.
MAX_OUTBOX_BYTES = 200_000


def transition_id(alert: Alert) -> str:
    """One change of an alert, notified once: it fired, escalated to a severity, or resolved (or
    a firing alert refreshed at a later time)."""
    return f"{alert.alert_id}|{alert.state.value}|{alert.severity.value}|{alert.emitted_at.isoformat()}"


def hold(desk: Desk, alerts: list[Alert]) -> list[str]:
    """Keep ``alerts`` in the outbox, the latest within its room, and remember each open alert's
    last firing message; returns the notifications there was no room for (oldest first)."""
    for alert in alerts:
        body = alert.model_dump(mode="json")
        desk.outbox[transition_id(alert)] = body
        opened = desk.open.get(alert.alert_id)
        if alert.state is AlertState.FIRING and opened is not None:
            desk.open[alert.alert_id] = replace(opened, notified=body)
    size, left_out = 0, []
    for tid in reversed(list(desk.outbox)):
        size += len(tid) + len(json.dumps(desk.outbox[tid]))
        if size > MAX_OUTBOX_BYTES:
            del desk.outbox[tid]
            left_out.append(tid)
    return left_out[::-1]


def forget(desk: Desk, ids: list[str]) -> bool:
    """Drop the notifications done (delivered, or given up on); whether any was held."""
    held = [tid for tid in ids if tid in desk.outbox]
    for tid in held:
        del desk.outbox[tid]
    return bool(held)


def held(desk: Desk) -> list[Alert]:
    """The notifications held, oldest first."""
    return [Alert.model_validate(body) for body in desk.outbox.values()]


def due_refreshes(desk: Desk, now: datetime, every: timedelta) -> list[Alert]:
    """The firing alerts last notified ``every`` ago or more, as notified again ``now``.

    Alertmanager ends a firing alert at its ``endsAt`` unless it is posted again; the worker
    posted it once, a day ahead, and a surge that lasted longer (a level three times the usual
    fires for as long as it lasts) was told resolved while it went on."""
    refreshed = []
    for opened in desk.open.values():
        if opened.notified is None:
            continue
        last = Alert.model_validate(opened.notified)
        if last.emitted_at + every <= now:
            refreshed.append(last.model_copy(update={"emitted_at": now}))
    return refreshed
