"""What a verified webhook body is: an event to store, a body to refuse (400), or an event of
this tenant's account that can never be stored or processed (quarantined, answered 200).

Why the split: Stripe redelivers anything that is not 2xx for days, so an answer must say what
a retry would change. A body that is not a Stripe event at all (not strict JSON, not UTF-8,
nested deeper than MAX_DEPTH, wrong shape) gets 400 and is not stored: Stripe never sends one,
and nothing in it identifies an event. A well-formed event whose values PostgreSQL cannot store
(NUL characters, unpaired surrogates, non-finite numbers) or whose `created` timestamp is absurd
is kept verbatim in `stripe_quarantine` and answered 200: no retry could succeed, and an
operator can inspect it (`support-mcp stripe quarantine`).
"""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

from ..audit_values import clean_text
from ..errors import InvalidInput

EVENT_ID_RE = re.compile(r"^evt_[A-Za-z0-9_]{1,255}$")
MAX_DEPTH = 32  # Stripe's own events nest < 10 levels
MIN_CREATED = 1_262_304_000  # 2010-01-01: before Stripe sent any event
MAX_CREATED_AHEAD = 86_400  # clock skew allowed for `created`, in seconds


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse(body: bytes) -> dict[str, Any]:
    """The event in a verified body, or InvalidInput (answered 400) saying why it is none."""
    try:
        event = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except RecursionError:
        raise InvalidInput(f"the body nests deeper than {MAX_DEPTH} levels") from None
    except ValueError:  # includes UnicodeDecodeError
        raise InvalidInput("the body is not JSON") from None
    if _depth_exceeds(event, MAX_DEPTH):
        raise InvalidInput(f"the body nests deeper than {MAX_DEPTH} levels")
    if not isinstance(event, dict) or event.get("object") != "event":
        raise InvalidInput("the body is not a Stripe event")
    data = event.get("data")
    if (not isinstance(event.get("id"), str) or not EVENT_ID_RE.match(event["id"])
            or not isinstance(event.get("type"), str) or not 0 < len(event["type"]) <= 200
            or not isinstance(event.get("created"), int) or not isinstance(data, dict)
            or not isinstance(data.get("object"), dict) or not isinstance(data["object"].get("id"), str)):
        raise InvalidInput("the body is not a Stripe event (id, type, created and data.object are required)")
    return event


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def quarantine_reason(event: dict[str, Any], now: float | None = None) -> str | None:
    """Why a parsed event can never be stored or processed, or None when it can."""
    created = event["created"]
    latest = (time.time() if now is None else now) + MAX_CREATED_AHEAD
    if isinstance(created, bool) or not MIN_CREATED <= created <= latest:
        return f"created timestamp {str(created)[:24]} is out of range"
    stack: list[Any] = [event]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if (why := _bad_string(key)) is not None:
                    return f"a key {why}"
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if (why := _bad_string(item)) is not None:
                return f"a value {why}"
        elif isinstance(item, float) and not math.isfinite(item):
            return "a number is out of range"
    return None


def _bad_string(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate"
    return None


def printable(text: str, limit: int = 200) -> str:
    """One storable, readable line of an untrusted string (NUL and surrogates escaped as the audit
    writer escapes them)."""
    escaped = clean_text(text[:limit], 6 * limit)  # an escape is at most 6 characters: never cut here
    return escaped.replace("\r", "\\r").replace("\n", "\\n")[:limit]
