"""The service's log format and filters, used by LOGGING in
recoup/settings.py and by gunicorn.conf.py."""

import logging

from .middleware import current_request_id


def json_formatter(fmt: str) -> dict:
    """Return the logging.config entry of the JSON log format, one object per
    line with the fields that ``fmt`` names."""
    return {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": fmt,
        "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
    }


class RequestIDLogFilter:
    """Add ``request_id`` to every log record, for the log formats."""

    def filter(self, record):
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id() or "-"
        return True


class ClientErrorLogFilter:
    """Turn Django's error line for a request it rejected as suspicious, such
    as a Host header not in ALLOWED_HOSTS, into a warning without the
    traceback.

    The client's mistake gets a 400, and each such request would otherwise
    write a whole traceback at ERROR, which anyone can trigger.
    """

    def filter(self, record):
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
        return True
