"""Structured logging to stderr only (stdout belongs to the MCP stdio transport), with PII masking."""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Mapping
from typing import Any

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

# At WARNING at least. The MCP SDK's server logger says again, at INFO, that a tool or resource
# failed: the guard and the tools already log one line per request.
NOISY_LOGGERS = ("httpx", "httpcore", "pgserver", "asyncio", "mcp.server.mcpserver.server")
_SKIP_KEYS = frozenset({"timestamp", "level", "logger"})
_MAX_DEPTH = 20

# --- regexes, compiled once. Unbounded runs are anchored by negative lookbehinds so a scan stays
# linear; the digit patterns consume their first character *before* the lookbehind ("X(?<!\w.)"
# means "X not preceded by a word char") so the regex engine can skip ahead with a charset scan.
# scheme://user:password@host -> password masked (postgresql://, redis://, amqp://, ...)
_URL_PASSWORD = re.compile(r"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+(?=@)")
# "Bearer <token68>" (RFC 6750); a trailing "." is prose. Only a token-like word is masked (see _bearer_sub).
_BEARER = re.compile(r"(?i)\b(bearer\s+)([A-Za-z0-9\-._~+/]*[A-Za-z0-9\-_~+/]=*)")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_STRIPE_SECRET = re.compile(r"\b(?:(?:sk|rk)_(?:live|test)|whsec)_[A-Za-z0-9]+")
_SUPPORT_MCP_KEY = re.compile(r"\bsmk_[A-Za-z0-9_-]+")  # our own API keys
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}(?![A-Za-z0-9-])"
)
# A free-standing run of 13+ digits with single space/dash separators (never glued to a word or
# dash, so UUID fragments are left alone); _card_sub looks for a Luhn-valid card inside it.
_DIGIT_RUN = re.compile(r"\d(?<![\w-].)(?:[ -]?\d){12,}(?![\w-])")
_DIGIT_GROUP = re.compile(r"\d+")
# "+44 20 7946 0958", "+1-555-123-4567", "+1 (555) 123-4567", "+441234567890"; digit count checked.
_PHONE_INTL = re.compile(
    r"\+(?<![\w+].)\d{1,3}(?:(?:[ .-](?:\(\d{1,4}\)[ .-]?)?\d{1,5}){1,6}|\d{5,12})(?!\w)(?![.-]\d)"
)
# "(555) 123-4567", "(555)123-4567"
_PHONE_PAREN = re.compile(r"\((?<![\w.+-].)\d{3}\)[ .-]?\d{3}[ .-]\d{4}(?!\w)(?![.-]\d)")
# "555.123.4567", "555-123-4567", "555 123 4567", "1-555-123-4567"
_PHONE_NANP = re.compile(
    r"\d(?<![\w.+-].)(?:(?<=1)[ .-]\d{3}|\d{2})[ .-]\d{3}[ .-]\d{4}(?!\w)(?![.-]\d)"
)
_SENSITIVE_KEY = re.compile(
    r"(?:^|_)(?:authorization|password|passwd|secret|token|api_?key|secret_?key|private_?key"
    r"|database_url|db_url|dsn|cookie|credentials?)$"
)


def _luhn_ok(digits: str) -> bool:
    doubled = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
    total = sum(int(d) for d in digits[-1::-2]) + sum(doubled[int(d)] for d in digits[-2::-2])
    return total % 10 == 0


def _card_sub(m: re.Match[str]) -> str:
    """Mask the longest Luhn-valid 13-19 digit window of whole groups (first digit 2-6), repeatedly."""
    run = m.group()
    groups = [g.group() for g in _DIGIT_GROUP.finditer(run)]
    seps = _DIGIT_GROUP.split(run)  # len(groups) + 1 pieces; first/last are ""
    out: list[str] = []
    i = 0
    while i < len(groups):
        end = None
        if groups[i][0] in "23456":
            digits = ""
            for j in range(i, len(groups)):
                digits += groups[j]
                if len(digits) > 19:
                    break
                if len(digits) >= 13 and _luhn_ok(digits):
                    end = j
        if end is None:
            out += [groups[i], seps[i + 1]]
            i += 1
        else:
            out += ["[card]", seps[end + 1]]
            i = end + 1
    return "".join(out)


def _bearer_sub(m: re.Match[str]) -> str:
    """Mask what looks like a credential: a digit or token punctuation in it, or 20+ characters. An
    ordinary word after "bearer" ("bearer API keys", "bearer tokens") is prose and stays."""
    token = m.group(2)
    if len(token) >= 20 or not token.isalpha():
        return f"{m.group(1)}[token]"
    return m.group()


def _phone_sub(m: re.Match[str]) -> str:
    n = sum(ch.isdigit() for ch in m.group())
    return "[phone]" if 8 <= n <= 15 else m.group()


def mask_pii(text: str) -> str:
    """Mask credentials, secrets, emails, card numbers and phone numbers in ``text``."""
    # Cheap substring gates skip most regex scans; order matters (cards before phones).
    if "://" in text:
        text = _URL_PASSWORD.sub(r"\1[secret]", text)
    if "bearer" in text.lower():
        text = _BEARER.sub(_bearer_sub, text)
    if "eyJ" in text:
        text = _JWT.sub("[token]", text)
    if "k_live_" in text or "k_test_" in text or "whsec_" in text:
        text = _STRIPE_SECRET.sub("[secret]", text)
    if "smk_" in text:
        text = _SUPPORT_MCP_KEY.sub("[secret]", text)
    if "@" in text:
        text = _EMAIL.sub("[email]", text)
    text = _DIGIT_RUN.sub(_card_sub, text)
    if "+" in text:
        text = _PHONE_INTL.sub(_phone_sub, text)
    if "(" in text:
        text = _PHONE_PAREN.sub("[phone]", text)
    return _PHONE_NANP.sub("[phone]", text)


def _is_sensitive_key(key: object) -> bool:
    return isinstance(key, str) and bool(_SENSITIVE_KEY.search(key.lower().replace("-", "_")))


def _mask_value(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return mask_pii(value)
    if depth >= _MAX_DEPTH:
        return "[truncated]" if isinstance(value, Mapping | list | tuple) else value
    if isinstance(value, Mapping):
        return {
            k: "[secret]" if _is_sensitive_key(k) and v is not None else _mask_value(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        masked = [_mask_value(v, depth + 1) for v in value]
        return masked if isinstance(value, list) else tuple(masked)
    return value


def mask_pii_processor(
    logger: WrappedLogger, method_name: str, event_dict: EventDict
) -> EventDict:
    """structlog processor: mask PII in every string of the event dict (and by sensitive key name)."""
    for key, value in event_dict.items():
        if key in _SKIP_KEYS or value is None:
            continue
        event_dict[key] = "[secret]" if _is_sensitive_key(key) else _mask_value(value)
    return event_dict


class _StderrLogger:
    """Writes each rendered line to whatever ``sys.stderr`` is at call time."""

    _lock = threading.Lock()

    def __init__(self, name: str | None = None) -> None:
        self.name = name

    def msg(self, message: str) -> None:
        stream = sys.stderr
        with self._lock:
            stream.write(message + "\n")
            stream.flush()

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


def _stderr_logger_factory(*args: Any) -> _StderrLogger:
    return _StderrLogger(args[0] if args else None)


def _add_logger_name(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Add ``logger``: the stdlib record's name, or the name given to :func:`get_logger`."""
    record = event_dict.get("_record")
    name = record.name if record is not None else getattr(logger, "name", None)
    if name:
        event_dict.setdefault("logger", name)
    return event_dict


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """StreamHandler bound lazily to the current ``sys.stderr``."""

    _support_mcp = True

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def _level_number(level: str) -> int:
    number = logging.getLevelNamesMapping().get(level.upper())
    if number is None:
        raise ValueError(f"unknown log level: {level!r}")
    return number


def _renderer(fmt: str) -> Processor:
    if fmt == "auto":
        isatty = getattr(sys.stderr, "isatty", None)
        fmt = "console" if isatty is not None and isatty() else "json"
    if fmt == "json":
        return structlog.processors.JSONRenderer()
    if fmt == "console":
        return structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    raise ValueError(f"unknown log format: {fmt!r} (expected auto, json or console)")


def _pre_chain() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _tail(renderer: Processor) -> list[Processor]:
    # Tracebacks are formatted before masking so exception messages are masked too;
    # the masker skips the timestamp key.
    return [structlog.processors.format_exc_info, mask_pii_processor, renderer]


def _configure_structlog(level_no: int, renderer: Processor) -> None:
    structlog.configure(
        processors=[*_pre_chain(), *_tail(renderer)],
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        logger_factory=_stderr_logger_factory,
        cache_logger_on_first_use=False,
    )


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    """Send structlog and stdlib ``logging`` output, masked and rendered, to stderr. Idempotent."""
    level_no, renderer = _level_number(level), _renderer(fmt)
    _configure_structlog(level_no, renderer)

    handler = _StderrHandler()
    handler.setLevel(level_no)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_pre_chain(),
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_tail(renderer)],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_support_mcp", False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level_no)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, level_no))


def get_logger(name: str | None = None) -> FilteringBoundLogger:
    """Return a lazy structlog logger; safe at import time, it follows later configure_logging()."""
    return structlog.get_logger(name)  # type: ignore[no-any-return]


def bind_context(**kv: Any) -> None:
    """Bind request-scoped context (tenant, request_id, ...) to every log line in this context."""
    structlog.contextvars.bind_contextvars(**kv)


def unbind_context(*keys: str) -> None:
    """Drop the given keys bound with :func:`bind_context`."""
    structlog.contextvars.unbind_contextvars(*keys)


# Never let an early log line (before configure_logging) reach stdout, the MCP transport.
if not structlog.is_configured():
    _configure_structlog(logging.INFO, _renderer("auto"))
