"""What ``followup connectors check`` reports: each mapped name and what it resolved to."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NameCheck"]


@dataclass(frozen=True, slots=True)
class NameCheck:
    vendor: str
    kind: str  # "ticket field", "group", "agent", "custom field", ...
    name: str
    resolved: str | None  # the vendor's id, None when the vendor has no such name

    @property
    def ok(self) -> bool:
        return self.resolved is not None

    @classmethod
    def of(cls, vendor: str, kind: str, name: str, resolved: object | None) -> NameCheck:
        return cls(vendor, kind, name, None if resolved is None else str(resolved))
