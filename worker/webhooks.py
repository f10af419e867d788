"""Vendor webhooks, verified: is this request the vendor's, fresh, and not seen before?

Pure decisions (no IO, the caller gives the time): ``followup serve`` (worker/runtime/web.py)
calls them on every webhook and marks the case changed only when they say so.

- Zendesk signs ``timestamp + body`` with the webhook's signing secret, HMAC-SHA256, base64,
  in ``X-Zendesk-Webhook-Signature``, the timestamp in
  ``X-Zendesk-Webhook-Signature-Timestamp`` (developer.zendesk.com/documentation/webhooks/
  verifying: "base64(HMACSHA256(TIMESTAMP + BODY))"; the signatures "help prevent against
  replay attacks").
- Intercom signs the body with the app's client secret, HMAC-SHA1, hex, as
  ``X-Hub-Signature: sha1=<hex>`` (developers.intercom.com, webhooks: "Signed notifications").
  It sends no timestamp header: the signed body's own ``created_at`` (Unix seconds) and its
  notification ``id`` serve instead.

A request is stale when its timestamp is further than the window (5 minutes) from now, either
way; replayed when its signature (Zendesk) or notification id (Intercom) was accepted within
the window. The seen-set is bounded: a flood of valid deliveries cannot grow it past
``capacity``, and what falls out of it is older than the window or the flood's own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

__all__ = [
    "REJECTIONS",
    "Delivery",
    "Rejection",
    "ReplayGuard",
    "intercom_signature",
    "verify_intercom",
    "verify_zendesk",
    "zendesk_signature",
]

Rejection = Literal["unsigned", "bad_signature", "stale", "replayed", "malformed"]
REJECTIONS: tuple[Rejection, ...] = ("unsigned", "bad_signature", "stale", "replayed", "malformed")
WINDOW = timedelta(minutes=5)

ZENDESK_SIGNATURE = "x-zendesk-webhook-signature"
ZENDESK_TIMESTAMP = "x-zendesk-webhook-signature-timestamp"
INTERCOM_SIGNATURE = "x-hub-signature"


@dataclass(frozen=True, slots=True)
class Delivery:
    """A verified webhook: the case it is about (None: about nothing the worker follows, such
    as Intercom's ping), or why it was refused."""

    case_id: str | None = None
    rejected: Rejection | None = None


@dataclass(slots=True)
class ReplayGuard:
    """Keys accepted within the window, oldest first, at most ``capacity`` of them."""

    window: timedelta = WINDOW
    capacity: int = 100_000
    _seen: OrderedDict[str, datetime] = field(default_factory=OrderedDict)

    def fresh(self, stamped: datetime, now: datetime) -> bool:
        return abs(now - stamped) <= self.window

    def first_time(self, key: str, now: datetime) -> bool:
        """Whether ``key`` is new; remembers it if so."""
        while self._seen and (
            len(self._seen) >= self.capacity or next(iter(self._seen.values())) < now - self.window
        ):
            self._seen.popitem(last=False)
        if key in self._seen:
            return False
        self._seen[key] = now
        return True


def zendesk_signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def intercom_signature(secret: str, body: bytes) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def verify_zendesk(
    secret: str, headers: Mapping[str, str], body: bytes, now: datetime, guard: ReplayGuard
) -> Delivery:
    """A Zendesk webhook: event subscriptions name the ticket in ``detail.id``; a trigger's
    or automation's webhook, whose body the admin writes, in ``ticket_id``
    (``{"ticket_id": "{{ticket.id}}"}``)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    signature, timestamp = lowered.get(ZENDESK_SIGNATURE), lowered.get(ZENDESK_TIMESTAMP)
    if not signature or not timestamp:
        return Delivery(rejected="unsigned")
    if not hmac.compare_digest(signature, zendesk_signature(secret, timestamp, body)):
        return Delivery(rejected="bad_signature")
    stamped = _instant(timestamp)
    if stamped is None or not guard.fresh(stamped, now):
        return Delivery(rejected="stale")
    payload = _json(body)
    detail = payload.get("detail") if isinstance(payload, dict) else None
    case = detail.get("id") if isinstance(detail, dict) else None
    if case is None and isinstance(payload, dict):
        case = payload.get("ticket_id")
    if not isinstance(case, str | int) or not str(case).isdigit():
        return Delivery(rejected="malformed")
    if not guard.first_time(f"zendesk:{signature}", now):
        return Delivery(rejected="replayed")
    return Delivery(case_id=str(case))


def verify_intercom(
    secret: str, headers: Mapping[str, str], body: bytes, now: datetime, guard: ReplayGuard
) -> Delivery:
    """An Intercom notification (``type: notification_event``); a conversation's topics name
    it in ``data.item``, anything else (the ``ping`` on registration) marks nothing."""
    lowered = {name.lower(): value for name, value in headers.items()}
    signature = lowered.get(INTERCOM_SIGNATURE)
    if not signature:
        return Delivery(rejected="unsigned")
    if not hmac.compare_digest(signature, intercom_signature(secret, body)):
        return Delivery(rejected="bad_signature")
    payload = _json(body)
    if not isinstance(payload, dict) or not isinstance(payload.get("created_at"), int):
        return Delivery(rejected="malformed")
    stamped = datetime.fromtimestamp(payload["created_at"], UTC)
    if not guard.fresh(stamped, now):
        return Delivery(rejected="stale")
    notification = payload.get("id")
    if not isinstance(notification, str) or not notification:
        return Delivery(rejected="malformed")
    if not guard.first_time(f"intercom:{notification}", now):
        return Delivery(rejected="replayed")
    data = payload.get("data")
    item = data.get("item") if isinstance(data, dict) else None
    if isinstance(item, dict) and item.get("type") == "conversation" and item.get("id"):
        return Delivery(case_id=str(item["id"]))
    return Delivery()


def _instant(text: str) -> datetime | None:
    """Zendesk's timestamp: ISO-8601, or Unix seconds."""
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text), UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError:
        return None
