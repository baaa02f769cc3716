"""Structured logs: one JSON object per line, with the request id, and no patient data.

:func:`install_logging` (called by ``create_app``) sends the records of every ``fhirnet`` logger
through :class:`JsonFormatter` to stderr, gives each request an id (the client's ``X-Request-ID``
when well-formed, else a new one), echoes it in the response, and logs one line per request.

What a line may hold is fixed here, not left to each call site: the request's method and URL
*rule* (``/fhir/<resource_type>/<logical_id:resource_id>``), never the raw path or query string
(ids, search parameters with patient identifiers); for an exception its type and the code
locations of its traceback, never its message, which may echo the input. Call sites log fixed
messages; a message never interpolates a body, an identifier, a reference or an answer.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
import uuid
from datetime import UTC, datetime
from typing import IO, Any

from flask import Flask, g, has_request_context, request
from flask.logging import default_handler
from werkzeug.wrappers import Response

#: The logger every fhirnet module's logger descends from; its handler writes the JSON lines.
ROOT_LOGGER = "fhirnet"
#: The per-request line's logger.
REQUEST_LOGGER = "fhirnet.web.request"
REQUEST_ID_HEADER = "X-Request-ID"
#: A client's request id is taken as is only when it cannot smuggle anything into a log line.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: Attributes of a record that ``extra=`` may set and a line shows.
_EXTRA_FIELDS = ("status", "duration_ms")


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``, and in a request ``request_id``, ``method`` and ``path`` (the URL rule); the
    request line adds ``status`` and ``duration_ms``. An exception adds ``exception`` (its type)
    and ``traceback`` (``file:line in function`` per frame), never its message."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": None,
        }
        if has_request_context():
            line["request_id"] = g.get("request_id")
            line["method"] = request.method
            line["path"] = url_rule()
        for name in _EXTRA_FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line["exception"] = f"{type(error).__module__}.{type(error).__qualname__}"
            line["traceback"] = [
                f"{frame.filename}:{frame.lineno} in {frame.name}"
                for frame in traceback.extract_tb(error.__traceback__)
            ]
        return json.dumps(line, default=str, ensure_ascii=False)


def url_rule() -> str | None:
    """The URL rule the current request matched (``/fhir/<resource_type>``), ``None`` if none:
    the path of a log line, which must not carry the ids of the raw path."""
    rule = request.url_rule
    return None if rule is None else rule.rule


def request_id_of(header: str | None) -> str:
    """The client's request id when it is 1 to 64 of ``[A-Za-z0-9._-]``, else a new uuid4."""
    if header is not None and _REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def install_logging(app: Flask, level: str, *, stream: IO[str] | None = None) -> None:
    """Log ``fhirnet`` records as JSON lines and every request of ``app`` as one line.

    Logging is process-wide: a second call (another app in the same process) replaces the handler
    the first one installed rather than adding another.

    :param level: the ``fhirnet`` loggers' level (``FHIRNET_LOG_LEVEL``).
    :param stream: where the lines go; default stderr.
    """
    root = logging.getLogger(ROOT_LOGGER)
    for handler in list(root.handlers):
        if isinstance(handler.formatter, JsonFormatter):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    # Flask's own handler would print app.logger's records a second time, as plain text.
    app.logger.removeHandler(default_handler)
    app.before_request(_start_request)
    app.after_request(_log_request)


def _start_request() -> None:
    g.request_id = request_id_of(request.headers.get(REQUEST_ID_HEADER))
    g.request_started = time.perf_counter()


def _log_request(response: Response) -> Response:
    request_id = g.get("request_id") or request_id_of(None)
    response.headers[REQUEST_ID_HEADER] = request_id
    started = g.get("request_started")
    duration_ms = None if started is None else round((time.perf_counter() - started) * 1000, 1)
    logging.getLogger(REQUEST_LOGGER).info(
        "request", extra={"status": response.status_code, "duration_ms": duration_ms}
    )
    return response
