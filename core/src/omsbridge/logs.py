"""Structured logs: every line about a post names the merchant and the transaction.

>>> log = merchant_log(logging.getLogger(__name__), "SHOPNOW")
>>> log.info("posted", extra={"transaction_id": "T-1"})
2026-11-22 10:15:00 INFO omsbridge.export.job [SHOPNOW T-1] posted

``configure_logging(json_lines=True)`` writes one JSON object per line instead, with
``merchant_id`` and ``transaction_id`` as fields, for log shippers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["ContextFilter", "JsonFormatter", "MerchantLog", "configure_logging", "merchant_log"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(merchant_id)s %(transaction_id)s] %(message)s"
"""The text log line: the merchant and transaction id (``-`` when none) on every line."""


class MerchantLog(logging.LoggerAdapter[logging.Logger]):
    """A logger that adds ``merchant_id`` (and any ``transaction_id`` given) to every record."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        """Merge the adapter's fields under the call's own ``extra``."""
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def merchant_log(logger: logging.Logger, merchant_id: str) -> MerchantLog:
    """A :class:`MerchantLog` for one merchant."""
    return MerchantLog(logger, {"merchant_id": merchant_id})


class ContextFilter(logging.Filter):
    """Give records without a merchant or transaction id a ``-``, so every format works."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Fill the missing fields; never drops a record."""
        for name in ("merchant_id", "transaction_id"):
            if not hasattr(record, name):
                setattr(record, name, "-")
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, merchant and transaction id."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as JSON."""
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "merchant_id": getattr(record, "merchant_id", "-"),
            "transaction_id": getattr(record, "transaction_id", "-"),
        }
        for name in (
            "entry_id",
            "error_class",
            "code",
            "latency_ms",
            "worker",
            "request_id",
            "status",
        ):
            if hasattr(record, name):
                data[name] = getattr(record, name)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure_logging(level: int = logging.INFO, *, json_lines: bool = False) -> None:
    """Send logs to stderr as text lines (or JSON lines) that carry the merchant and transaction.

    Like :func:`logging.basicConfig`, it leaves a root logger that someone else has set up (a
    host application, pytest) alone, apart from the level; calling it again replaces only the
    handler it installed itself.
    """
    root = logging.getLogger()
    root.setLevel(level)
    ours = [h for h in root.handlers if getattr(h, "_omsbridge", False)]
    if root.handlers and not ours:
        return
    for old in ours:
        root.removeHandler(old)
    handler = logging.StreamHandler()
    handler._omsbridge = True  # type: ignore[attr-defined]
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
