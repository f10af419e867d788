"""Every error a connector raises, for every vendor, in one tree.

::

    ConnectorError
     ├── MappingError                 tenant mapping invalid, or a name the vendor does not know
     ├── BadRecord                    one vendor record cannot be translated (missing field,
     │                                wrong type, unknown value); streams report it, go on
     └── VendorError                  a vendor call failed (vendor, method, path, status)
          ├── TransientVendorError    worth retrying later; reads retry these themselves
          │    ├── VendorTimeout      connect/read/write/pool timeout
          │    ├── ConnectionLost     connection refused, reset, protocol error
          │    ├── ServerError        5xx
          │    └── RateLimited        429; ``retry_after`` seconds
          ├── PermanentVendorError    retrying the same request cannot help
          │    ├── BadRequest         400
          │    ├── Unauthorized       401
          │    ├── Forbidden          403
          │    ├── NotFound           404
          │    ├── Conflict           409 (Zendesk ``safe_update`` collision)
          │    ├── Unprocessable      422
          │    ├── PaginationStuck    a list that repeats a cursor/offset or passes the page
          │                           budget: read on, it would never end
          │    └── CursorExpired      a sync cursor kept between cycles the vendor no longer
          │                           honours (Asana sync token past 24 h, 412): read in full
          ├── ResourceBudgetSpent     refused before sending: one resource's own budget (a
          │                           Zendesk ticket's updates) is spent for its window; not
          │                           retried at once, worth trying once the window rolls
          └── OutcomeUnknown          a write was sent but its answer was lost (timeout, reset,
                                      5xx after send): it may or may not have been applied

httpx errors and error statuses are translated at the edge (``connectors.http``) with
``raise ... from exc``. Messages name the vendor, method, URL path and status only: never a
header, a query string or a body, so tokens and agent emails cannot leak into logs.
"""

from __future__ import annotations

__all__ = [
    "BadRecord",
    "BadRequest",
    "Conflict",
    "ConnectionLost",
    "ConnectorError",
    "CursorExpired",
    "Forbidden",
    "MappingError",
    "NotFound",
    "OutcomeUnknown",
    "PaginationStuck",
    "PermanentVendorError",
    "RateLimited",
    "ResourceBudgetSpent",
    "ServerError",
    "TransientVendorError",
    "Unauthorized",
    "Unprocessable",
    "VendorError",
    "VendorTimeout",
    "error_for_status",
]


class ConnectorError(Exception):
    """Base of everything ``connectors`` raises."""


class MappingError(ConnectorError):
    """The tenant mapping is invalid or names something the vendor does not have."""


class BadRecord(ConnectorError):
    """A vendor record (ticket, conversation, task, organization, contact) that does not
    translate into the domain model. ``record_id`` is the vendor's id as far as it could be
    read; ``reason`` says which field is missing, of the wrong type or has an unknown value."""

    def __init__(self, vendor: str, record_id: str, reason: str) -> None:
        self.vendor = vendor
        self.record_id = record_id
        self.reason = reason
        super().__init__(f"{vendor} record {record_id}: {reason}")


class VendorError(ConnectorError):
    def __init__(
        self,
        vendor: str,
        method: str,
        path: str,
        status: int | None = None,
        detail: str = "",
    ) -> None:
        self.vendor = vendor
        self.method = method
        self.path = path
        self.status = status
        self.detail = detail
        where = f"{vendor} {method} {path}"
        what = f" -> {status}" if status is not None else ""
        why = f": {detail}" if detail else ""
        super().__init__(f"{where}{what}{why}")


class TransientVendorError(VendorError):
    pass


class VendorTimeout(TransientVendorError):
    pass


class ConnectionLost(TransientVendorError):
    pass


class ServerError(TransientVendorError):
    pass


class RateLimited(TransientVendorError):
    def __init__(self, vendor: str, method: str, path: str, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(vendor, method, path, 429, f"retry after {retry_after:g}s")


class PermanentVendorError(VendorError):
    pass


class BadRequest(PermanentVendorError):
    pass


class Unauthorized(PermanentVendorError):
    pass


class Forbidden(PermanentVendorError):
    pass


class NotFound(PermanentVendorError):
    pass


class Conflict(PermanentVendorError):
    pass


class Unprocessable(PermanentVendorError):
    pass


class PaginationStuck(PermanentVendorError):
    """A list that hands back a cursor or offset it already gave, or runs past the page
    budget: reading on would spend the rate limit forever (vendor-behaviours.md Z7, A1)."""


class CursorExpired(PermanentVendorError):
    """A sync cursor kept between cycles that the vendor no longer honours (an Asana sync
    token past its 24 hours answers 412, a Zendesk cursor it cannot parse 400/422): the
    caller reads in full instead, and says so (issue 13)."""


class ResourceBudgetSpent(VendorError):
    """The client refused a request before sending it: the resource's own budget (about 30
    updates of one Zendesk ticket per 10 minutes, vendor-behaviours.md Z2) is spent. Neither
    transient (an immediate retry is refused the same) nor permanent (a later cycle, once the
    window has rolled, may send it)."""


class OutcomeUnknown(VendorError):
    """Neither transient nor permanent: the caller must look before it writes again."""


_PERMANENT_BY_STATUS: dict[int, type[PermanentVendorError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Unprocessable,
}


def error_for_status(vendor: str, method: str, path: str, status: int) -> VendorError:
    """The error for a non-2xx, non-429 status (429 needs its Retry-After: see RateLimited)."""
    if status >= 500:
        return ServerError(vendor, method, path, status)
    return _PERMANENT_BY_STATUS.get(status, PermanentVendorError)(vendor, method, path, status)
