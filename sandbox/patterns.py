"""Endpoint patterns of faults and limits: globs on ``"METHOD /path-template"``."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

__all__ = ["endpoint_matches"]

_CONVERTER = re.compile(r":\w+}")


def endpoint_matches(pattern: str, endpoint: str) -> bool:
    """Endpoints are named as routed (``PUT /api/v2/tickets/{ticket_id:int}``, what the
    request log and stats show); a pattern may leave the ``:int`` out."""
    return fnmatchcase(endpoint, pattern) or fnmatchcase(_CONVERTER.sub("}", endpoint), pattern)
