import json
import logging
import os

import pytest
from gunicorn import glogging

from hookstream.logs import JsonFormatter, configure_logging


def _format(**kwargs: object) -> dict:  # type: ignore[type-arg]
    record = logging.LogRecord("hookstream.test", logging.INFO, __file__, 1, "hello %s", ("x",), None)
    for key, value in kwargs.items():
        setattr(record, key, value)
    return json.loads(JsonFormatter().format(record))


def test_one_json_object_with_the_callers_fields() -> None:
    line = _format(fields={"event_id": "e1", "status": 200})
    assert line["msg"] == "hello x"
    assert line["level"] == "info"
    assert line["event_id"] == "e1"
    assert line["status"] == 200


def test_secret_like_fields_are_dropped() -> None:
    line = _format(fields={"signature": "sha256=abc", "payload": "{...}", "Secret": "s", "ok": 1})
    assert line == {k: line[k] for k in ("ts", "level", "logger", "msg", "ok")}


def test_exceptions_are_one_line_without_frames() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        line = _format(exc_info=sys.exc_info())
    assert line["error"] == "ValueError: boom"


def test_gunicorns_own_lines_still_format_after_configure_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """The producer's workers log through gunicorn's formatter too, which prints each record's
    process id: configure_logging may drop lookups no line prints, never that one."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # configure_logging replaces them
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setattr(logging, "logThreads", logging.logThreads)
    configure_logging()
    record = logging.getLogger("gunicorn.error").makeRecord(
        "gunicorn.error", logging.INFO, __file__, 1, "Worker exiting (pid: %s)", (1,), None
    )
    gunicorn_format = glogging.CONFIG_DEFAULTS["formatters"]["generic"]["format"]
    assert f"[{os.getpid()}]" in logging.Formatter(gunicorn_format).format(record)
