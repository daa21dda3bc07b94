"""Logging: the breaker is a library, so its lines go to the standard ``logging`` logger ``breaker``.

The host's ``logging`` configuration decides handlers, formats and levels. With nothing configured,
Python's last-resort handler prints WARNING and above to stderr (one line per outage, never per call)
and everything below costs one level check. structlog is only the front end (``breaker_logger()``):
its processors drop a disabled level before any formatting and hand the event to the stdlib record,
with the message readable as ``EVENT key=value …`` and every field also a record attribute
(``record.tier``), which is what JSON formatters read.

``configure_logging()`` is for the processes this project owns (console, CLI, simulator, bench).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog
from structlog.testing import LogCapture

LOGGER_NAME = "breaker"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "warn": logging.WARNING,
           "error": logging.ERROR, "exception": logging.ERROR, "critical": logging.CRITICAL}
#: attributes every LogRecord has: an event field of the same name is renamed, never allowed to collide
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def _capturing() -> list[Any] | None:
    """structlog's processors while ``structlog.testing.capture_logs()`` is active (it ends with a LogCapture)."""
    processors = structlog.get_config()["processors"]
    return processors if processors and isinstance(processors[-1], LogCapture) else None


def _filter_or_capture(logger: logging.Logger, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Drop a disabled level before anything is formatted; under ``capture_logs()`` hand every event to it."""
    captured = _capturing()
    if captured is not None:
        for processor in captured:  # the last one, LogCapture, records the event and drops it
            event_dict = processor(logger, method, event_dict)
    if not logger.isEnabledFor(_LEVELS.get(method, logging.INFO)):
        raise structlog.DropEvent
    return event_dict


def _field_name(key: str) -> str:
    return f"{key}_" if key in _RECORD_ATTRIBUTES else key


def _render(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return json.dumps(text) if (not text or any(c.isspace() or c in '"=' for c in text)) else text


def _to_stdlib_record(logger: logging.Logger, method: str, event_dict: dict[str, Any]) -> tuple[tuple, dict]:
    """``(args, kwargs)`` for ``logger.<level>()``: message ``EVENT key=value …``, fields as record attributes."""
    event = str(event_dict.pop("event", ""))
    exc_info = event_dict.pop("exc_info", None)
    message = " ".join([event, *(f"{key}={_render(value)}" for key, value in event_dict.items())])
    extra = {_field_name(key): value for key, value in event_dict.items()}
    extra["event"] = event
    kwargs: dict[str, Any] = {"extra": extra, "stacklevel": 4}
    if exc_info:
        kwargs["exc_info"] = exc_info
    return (message,), kwargs


class BreakerLogger(structlog.stdlib.BoundLogger):
    """structlog's stdlib logger, with ``capture_logs()`` seeing DEBUG too (as it sees every level)."""

    def is_enabled_for(self, level: int) -> bool:
        return _capturing() is not None or self._logger.isEnabledFor(level)


def breaker_logger() -> BreakerLogger:
    """The breaker's logger: structlog's API in front of ``logging.getLogger("breaker")``."""
    return BreakerLogger(logging.getLogger(LOGGER_NAME), [_filter_or_capture, _to_stdlib_record], {})


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: timestamp, level, logger, event and the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "event", None) or record.getMessage(),
        }
        line.update((k, v) for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES and k != "event")
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class ConsoleFormatter(logging.Formatter):
    """``2026-11-28T22:00:00Z [warning ] breaker: EVENT key=value``: for people reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s [%(levelname_lower)-8s] %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def format(self, record: logging.LogRecord) -> str:
        record.levelname_lower = record.levelname.lower()
        return super().format(record)


_our_processors: list[Any] | None = None  # the processor list of the structlog configuration we set, if any


class _OwnHandler(logging.StreamHandler):
    """The handler ``configure_logging`` installs, so that calling it again replaces it instead of adding one."""


def configure_logging(level: str = "INFO", fmt: str = "console", *, stream: TextIO | None = None) -> None:
    """For processes this project owns: breaker lines to ``stream`` (stderr) at ``level``, as text or JSON lines.

    Sets up the stdlib logger ``breaker`` (its own handler, no propagation, so a root handler does not print
    it twice). structlog's global configuration is set only when nobody has configured structlog yet: a host
    that did keeps its own.
    """
    numeric = logging.getLevelNamesMapping()[level.upper()]
    stream = sys.stderr if stream is None else stream
    handler = _OwnHandler(stream)
    handler.setFormatter(JsonLinesFormatter() if fmt == "json" else ConsoleFormatter())
    logger = logging.getLogger(LOGGER_NAME)
    for old in [h for h in logger.handlers if isinstance(h, _OwnHandler)]:
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(numeric)
    logger.propagate = False
    global _our_processors
    if structlog.is_configured() and structlog.get_config()["processors"] is not _our_processors:
        return  # someone else's configuration: theirs to keep
    renderer = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    _our_processors = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        renderer,
    ]
    structlog.configure(
        processors=_our_processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
