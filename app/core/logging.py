"""Structured JSON logs, one event per line, with a single redaction step for every logger.

Standard-library records (uvicorn, dramatiq, sqlalchemy) go through the same structlog processor
chain, so the redaction cannot be bypassed by logging from a library.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any, cast

import structlog

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

REDACTED = "[REDACTED]"
_SENSITIVE_KEY = re.compile(
    r"(authorization|signature|token|secret|password|passwd|api[_-]?key|auth|cookie|pepper|encryption[_-]?keys?|credential)",
    re.I,
)
# Values that are secrets whatever key they sit under.
_SENSITIVE_VALUE = re.compile(
    r"(ngw_(live|test)_[A-Za-z0-9_\-]+|whsec_[A-Za-z0-9_\-+/=]+|SG\.[A-Za-z0-9_\-.]{10,}|(Basic|Bearer)\s+[A-Za-z0-9._~+/=\-]+)"
)

# Personal data whatever key it sits under: an E.164 number (with or without "whatsapp:") or an email
# address. Logs outlive erasure (DELETE /v1/contacts/{id} cannot reach them), so they never hold either.
_PERSONAL_VALUE = re.compile(r"(?<![\w+])\+?[1-9]\d{7,14}\b(?![-:.]\d)|[\w.+%-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def redact(value: Any, key: str | None = None) -> Any:
    if key is not None and _SENSITIVE_KEY.search(key):
        return REDACTED if value not in (None, "") else value
    if isinstance(value, str):
        return _PERSONAL_VALUE.sub(REDACTED, _SENSITIVE_VALUE.sub(REDACTED, value))
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def _redact_processor(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return {k: redact(v, None if k == "event" else k) for k, v in event_dict.items()}


def _add_request_id(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    rid = request_id_var.get()
    if rid is not None:
        event_dict.setdefault("request_id", rid)
    return event_dict


def _stdlib_extras(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    record: logging.LogRecord | None = event_dict.get("_record")
    if record is not None:
        for k, v in record.__dict__.items():
            if k not in _RESERVED and not k.startswith("_"):
                event_dict.setdefault(k, v)
    return event_dict


_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "color_message"}

_SHARED: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    _add_request_id,
]


def json_formatter() -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED, _stdlib_extras],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact_processor,
            structlog.processors.JSONRenderer(),
        ],
    )


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    # We own logging in our processes: drop what Litestar, uvicorn or the dramatiq CLI installed,
    # so every line is one JSON event that went through the redaction step.
    for h in list(root.handlers):
        root.removeHandler(h)
    for name in ("dramatiq", "uvicorn", "uvicorn.error", "uvicorn.access", "litestar"):
        lib = logging.getLogger(name)
        for h in list(lib.handlers):
            lib.removeHandler(h)
        lib.propagate = True
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("sqlalchemy.engine", "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return cast(structlog.stdlib.BoundLogger, structlog.get_logger(name))
