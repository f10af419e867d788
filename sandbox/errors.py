"""Vendor errors raised by handlers and turned into the vendor's own JSON error shape.

VendorError                 any answer that is not a success, with its vendor body
└── (no subclasses: the vendor modules build the bodies, see ``zendesk.error`` etc.)
ConnectionDropped           raised in-process when a fault drops a connection and there
                            is no socket to cut (ASGI test transports)
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

__all__ = ["ConnectionDropped", "VendorError", "json_response"]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return Response(body, status_code=status, headers=headers, media_type="application/json")


class VendorError(Exception):
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return json_response(self.body, self.status, self.headers)


class ConnectionDropped(Exception):
    """The sandbox cut the connection on purpose (fault injection)."""
