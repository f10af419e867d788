"""Messages a customer would have received: public replies and outbound messages."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Outbox", "OutboxMessage"]


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    seq: int
    at: str
    vendor: str
    ref: str  # "zendesk:123", "intercom:10001"
    to: str | None  # None: the requester has no email address, nothing would be delivered
    subject: str
    body: str


class Outbox:
    def __init__(self) -> None:
        self._messages: list[OutboxMessage] = []

    def send(
        self, *, at: str, vendor: str, ref: str, to: str | None, subject: str, body: str
    ) -> None:
        seq = len(self._messages) + 1
        self._messages.append(OutboxMessage(seq, at, vendor, ref, to, subject, body))

    def messages(self, *, ref: str | None = None, after: int = 0) -> list[dict[str, Any]]:
        return [
            asdict(message)
            for message in self._messages
            if message.seq > after and (ref is None or message.ref == ref)
        ]

    def dump(self) -> list[dict[str, Any]]:
        return [asdict(message) for message in self._messages]

    def load(self, messages: list[dict[str, Any]]) -> None:
        self._messages = [OutboxMessage(**message) for message in messages]

    def clear(self) -> None:
        self._messages.clear()
