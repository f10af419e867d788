"""Fault injection: per vendor and endpoint, drawn from a seeded RNG so a run can be replayed.

Kinds:
  ``429``, ``500``, ``502``, ``503``  the vendor's error answer instead of the real one
  ``slow``            wait ``slow_seconds`` then answer (and apply) normally: past a client's
                      timeout the change still happens
  ``drop_before``     cut the connection before the request is applied
  ``drop_after``      apply the request, then cut the connection: the client never hears
  ``malformed_json``  apply the request, answer with a truncated JSON body
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

from sandbox.patterns import endpoint_matches

__all__ = ["FAULT_KINDS", "FaultPlan", "FaultRule", "parse_fault"]

FAULT_KINDS = (
    "429", "500", "502", "503", "slow", "drop_before", "drop_after", "malformed_json",
)  # fmt: skip


@dataclass(slots=True)
class FaultRule:
    vendor: str  # "zendesk" | "intercom" | "asana" | "*"
    kind: str
    probability: float
    endpoint: str = "*"  # glob on "METHOD /path-template", e.g. "PUT /api/v2/tickets/*"
    times: int | None = None  # fire at most this many times (None: no cap)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(FAULT_KINDS)}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be between 0 and 1")
        if self.times is not None and self.times < 0:
            raise ValueError("times must be positive")

    def matches(self, vendor: str, endpoint: str) -> bool:
        return self.vendor in ("*", vendor) and endpoint_matches(self.endpoint, endpoint)


def parse_fault(text: str) -> FaultRule:
    """CLI form ``vendor:kind=probability[@endpoint-glob]``, e.g.
    ``zendesk:drop_after=0.1@PUT /api/v2/tickets/*``."""
    head, _, endpoint = text.partition("@")
    vendor, _, rest = head.partition(":")
    kind, _, probability = rest.partition("=")
    if not vendor or not kind or not probability:
        raise ValueError(f"fault {text!r}: expected vendor:kind=probability[@endpoint]")
    return FaultRule(vendor.strip(), kind.strip(), float(probability), endpoint.strip() or "*")


class FaultPlan:
    def __init__(
        self, rules: list[FaultRule] | None = None, *, seed: int = 0, slow_seconds: float = 30.0
    ) -> None:
        self.rules = list(rules or [])
        self.seed = seed
        self.slow_seconds = slow_seconds
        self._rng = random.Random(seed)

    def draw(self, vendor: str, endpoint: str) -> str | None:
        """The fault this request suffers, if any. One RNG draw per matching rule."""
        for rule in self.rules:
            if not rule.matches(vendor, endpoint) or rule.times == 0:
                continue
            if self._rng.random() < rule.probability:
                if rule.times is not None:
                    rule.times -= 1
                return rule.kind
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "slow_seconds": self.slow_seconds,
            "rules": [asdict(rule) for rule in self.rules],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultPlan:
        rules = [FaultRule(**rule) for rule in data.get("rules", [])]
        return cls(
            rules, seed=int(data.get("seed", 0)), slow_seconds=float(data.get("slow_seconds", 30))
        )
