"""Webhook verification, the pure part: signatures, freshness, replays, the seen-set bound."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

from worker.webhooks import ReplayGuard, verify_intercom, verify_zendesk, zendesk_signature

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
SECRET = "dGhlIHNlY3JldA"


def _signed_zendesk(body: bytes, stamp: str) -> dict[str, str]:
    return {
        "x-zendesk-webhook-signature": zendesk_signature(SECRET, stamp, body),
        "x-zendesk-webhook-signature-timestamp": stamp,
    }


def test_the_zendesk_signature_is_base64_hmac_sha256_of_timestamp_then_body() -> None:
    """developer.zendesk.com/documentation/webhooks/verifying: base64(HMACSHA256(TS + BODY))."""
    digest = hmac.new(SECRET.encode(), b"2026-03-04T15:00:00Z{}", hashlib.sha256).digest()
    assert (
        zendesk_signature(SECRET, "2026-03-04T15:00:00Z", b"{}")
        == base64.b64encode(digest).decode()
    )


def test_a_trigger_webhook_names_its_ticket_and_may_stamp_unix_seconds() -> None:
    body = b'{"ticket_id": "42"}'
    stamp = str(int(NOW.timestamp()) - 60)
    delivery = verify_zendesk(SECRET, _signed_zendesk(body, stamp), body, NOW, ReplayGuard())
    assert (delivery.case_id, delivery.rejected) == ("42", None)


def test_a_signed_body_without_a_ticket_is_malformed_and_a_tampered_one_forged() -> None:
    body, stamp = b'{"detail": {}}', "2026-03-04T15:00:00Z"
    headers = _signed_zendesk(body, stamp)
    assert verify_zendesk(SECRET, headers, body, NOW, ReplayGuard()).rejected == "malformed"
    tampered = b'{"ticket_id": 1}'
    assert verify_zendesk(SECRET, headers, tampered, NOW, ReplayGuard()).rejected == (
        "bad_signature"
    )


def test_an_intercom_notification_is_stale_by_its_signed_created_at() -> None:
    old = int((NOW - timedelta(minutes=6)).timestamp())
    body = json.dumps({"id": "n1", "created_at": old, "data": {"item": {}}}).encode()
    signature = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    delivery = verify_intercom(SECRET, {"X-Hub-Signature": signature}, body, NOW, ReplayGuard())
    assert delivery.rejected == "stale"


def test_the_seen_set_forgets_what_left_the_window_and_stays_bounded() -> None:
    guard = ReplayGuard(window=timedelta(minutes=5), capacity=3)
    assert guard.first_time("a", NOW)
    assert not guard.first_time("a", NOW + timedelta(minutes=4))
    assert guard.first_time("a", NOW + timedelta(minutes=6))  # out of the window: forgotten
    for key in "bcde":
        assert guard.first_time(key, NOW + timedelta(minutes=6))
    assert len(guard._seen) == 3
