"""Logging with the request id of the current request on every line."""

from __future__ import annotations

import logging
from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("siyu_request_id", default="-")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def configure_logging(level: str = "INFO") -> None:
    """Install one stderr handler on the ``siyu`` logger (idempotent)."""
    logger = logging.getLogger("siyu")
    logger.setLevel(level)
    if any(getattr(h, "_siyu", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler()
    handler._siyu = True  # type: ignore[attr-defined]
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    )
    logger.addHandler(handler)
    logger.propagate = False


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name if name.startswith("siyu") else f"siyu.{name}")
