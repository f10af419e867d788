"""structlog setup: JSON lines in production, readable columns on a terminal.

Context travels in contextvars (``structlog.contextvars.bound_contextvars``): the cycle binds
``cycle_id`` and ``dry_run``, the executor binds ``tenant``, ``case``, ``policy``, ``step`` and
``action`` around each plan item. :data:`CONTEXT_FIELDS` are put on every event, ``None`` when
unknown, so JSON consumers always find the same keys.

:class:`RedactSecrets` runs last before rendering, after exceptions are formatted to text, so
a token cannot slip out through a traceback either.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = [
    "CONTEXT_FIELDS",
    "REDACTED",
    "SENSITIVE_KEYS",
    "AddContextFields",
    "RedactSecrets",
    "configure_logging",
]

CONTEXT_FIELDS = ("cycle_id", "dry_run", "tenant", "case", "policy", "step", "action")
REDACTED = "[redacted]"
SENSITIVE_KEYS = frozenset(
    {
        "authorization",
        "api_key",
        "apikey",
        "admin_token",
        "cookie",
        "password",
        "secret",
        "token",
    }
)


class AddContextFields:
    """Give every event the same context keys, ``None`` where unknown."""

    def __init__(self, fields: Iterable[str] = CONTEXT_FIELDS) -> None:
        self._fields = tuple(fields)

    def __call__(self, _logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        for name in self._fields:
            event_dict.setdefault(name, None)
        return event_dict


class RedactSecrets:
    """Blank values under sensitive keys and every occurrence of a known secret value."""

    def __init__(self, secrets: Iterable[str], keys: Iterable[str] = SENSITIVE_KEYS) -> None:
        # Longest first, so a secret containing another is removed whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._keys = frozenset(k.lower() for k in keys)

    def __call__(self, _logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        return {key: self._clean(key, value) for key, value in event_dict.items()}

    def _sensitive(self, key: str) -> bool:
        key = key.lower()
        return key in self._keys or key.endswith(("_token", "_password", "_secret"))

    def _clean(self, key: str, value: Any) -> Any:
        if self._sensitive(key) and value is not None:
            return REDACTED
        return self._scrub(value)

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, Mapping):
            return {k: self._clean(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._scrub(v) for v in value]
        if isinstance(value, int | float | bool) or value is None:
            return value
        # Anything else is rendered with str() by the renderers; scrub that text.
        return self._scrub(str(value))


def configure_logging(
    *,
    secrets: Iterable[str],
    log_format: Literal["auto", "json", "console"] = "auto",
    level: str = "info",
    stream: TextIO | None = None,
) -> None:
    """Logs go to stderr (stdout is for command output such as the printed plan).

    Standard-library logging (APScheduler, uvicorn, httpx) is rendered the same way and
    redacted the same way, at WARNING and above so their chatter does not drown the worker's.
    """
    out = stream or sys.stderr
    console = log_format == "console" or (log_format == "auto" and out.isatty())
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=out.isatty())
        if console
        else structlog.processors.JSONRenderer()
    )
    enrich: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        AddContextFields(),
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[*enrich, RedactSecrets(secrets), renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *enrich],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                RedactSecrets(secrets),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(max(logging.WARNING, logging.getLevelNamesMapping()[level.upper()]))
