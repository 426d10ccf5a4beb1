"""What an audit row may hold: every value made storable (and private) before it is buffered.

PostgreSQL refuses NUL in text and jsonb, lone surrogates cannot be encoded as UTF-8, and
jsonb has no NaN/Infinity (1e400 parses as infinity): any of these in one argument used to
stop the whole audit trail. Here every string is escaped, every number made finite, nesting
and size are bounded, and customer text never reaches the table:

- free text (arguments named like description/content/comment/text/query/policies/subject/
  title/body/message/note..., and ANY string longer than `TEXT_LIMIT` characters) is stored
  as ``{"chars": N, "sha256": "<first 12 hex>"}`` only;
- names (`name`, `*_name`, `assignee`) become ``"[name]"``; secrets by key name ``"[secret]"``;
- every other string is PII-masked (emails, phones, cards, credentials) and kept.

The hash lets an auditor see that two calls sent the same text; it is not encryption (a short,
guessable text can be confirmed by hashing guesses).
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

from .logging import _is_sensitive_key, mask_pii

TEXT_LIMIT = 120  # longer strings are free text whatever their argument is called
KEY_LIMIT = 60
MAX_DEPTH = 6
MAX_ITEMS = 30  # per object / array
MAX_NODES = 200  # per row: values visited in all
FREE_TEXT_KEYS = frozenset({
    "description", "content", "comment", "comments", "text", "query", "policies", "policy", "subject",
    "title", "body", "message", "messages", "note", "notes", "summary", "instructions", "question",
    "answer", "reply", "html", "markdown", "prompt",
})
_NAME_KEY = re.compile(r"(?:^|_)(?:name|assignee|author)$")
_INT_LIMIT = 1 << 63


def clean_text(text: str, limit: int) -> str:
    """`text` with NUL and invalid code points (lone surrogates) escaped, cut to `limit` chars."""
    if "\x00" in text:
        text = text.replace("\x00", "\\u0000")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[:limit] + "…"


def digest(text: str) -> dict[str, Any]:
    """Length and a short hash of a text (the text itself is never stored)."""
    raw = text.encode("utf-8", "surrogatepass")
    return {"chars": len(text), "sha256": hashlib.sha256(raw).hexdigest()[:12]}


def number(value: int | float) -> int | float | str:
    """A JSON number jsonb accepts: non-finite floats and huge integers become strings."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if -_INT_LIMIT <= value < _INT_LIMIT:
        return value
    return f"[integer of {value.bit_length()} bits]"


class _Budget:
    __slots__ = ("left",)

    def __init__(self, nodes: int) -> None:
        self.left = nodes


def _string(value: str, key: str, free: bool) -> Any:
    if free or len(value) > TEXT_LIMIT:
        return digest(value)
    if _NAME_KEY.search(key):
        return "[name]" if value.strip() else value[:0]
    if _is_sensitive_key(key):
        return "[secret]"
    return clean_text(mask_pii(value), TEXT_LIMIT + 20)


def _value(value: Any, key: str, free: bool, depth: int, budget: _Budget) -> Any:
    budget.left -= 1
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _string(value, key, free)
    if isinstance(value, int | float):
        return number(value)
    if isinstance(value, dict | list | tuple):
        if depth >= MAX_DEPTH or budget.left <= 0:
            return f"[{'object' if isinstance(value, dict) else 'array'} not stored: too deep or too large]"
        if isinstance(value, dict):
            return _object(value, free, depth + 1, budget)
        out = [_value(v, key, free, depth + 1, budget) for v in list(value[:MAX_ITEMS]) if budget.left > 0]
        if len(out) < len(value):
            out.append(f"[{len(value) - len(out)} more items not stored]")
        return out
    return f"[{clean_text(type(value).__name__, 40)}]"


def _object(value: dict[Any, Any], free: bool, depth: int, budget: _Budget) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, (k, v) in enumerate(value.items()):
        if i >= MAX_ITEMS or budget.left <= 0:
            out["…"] = f"[{len(value) - i} more keys not stored]"
            break
        name = clean_text(str(k), KEY_LIMIT)
        lowered = name.lower()
        out[name] = _value(v, lowered, free or lowered in FREE_TEXT_KEYS, depth, budget)
    return out


def storable_arguments(arguments: Any) -> Any:
    """The audit form of a call's arguments (see the module doc). Never raises."""
    try:
        if isinstance(arguments, dict):
            return _object(arguments, False, 1, _Budget(MAX_NODES))
        return {"[arguments]": _value(arguments, "", False, 1, _Budget(MAX_NODES))}
    except Exception:  # noqa: BLE001 - an audit row must exist even for arguments we cannot read
        return {"[arguments]": "[not storable]"}
