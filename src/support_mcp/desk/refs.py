"""Parsing of the references a model passes: ticket ids/numbers, customer refs, cursors."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from uuid import UUID

from ..errors import InvalidInput

_NUMBER_RE = re.compile(r"^#?(\d{1,15})$")
_EMAIL_RE = re.compile(r"^[^@\s]{1,200}@[^@\s]{1,200}$")
_TAG_RE = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,49}$")


def parse_uuid(value: str) -> UUID | None:
    try:
        return UUID(value.strip())
    except (ValueError, AttributeError):
        return None


def ticket_ref(ref: str) -> tuple[UUID | None, int | None]:
    """A ticket is named by its uuid or its number ('1042' or '#1042')."""
    ref = (ref or "").strip()
    if uid := parse_uuid(ref):
        return uid, None
    if m := _NUMBER_RE.match(ref):
        return None, int(m.group(1))
    raise InvalidInput(f"ticket must be a ticket id (uuid) or number like 1042 or #1042, got {ref[:50]!r}")


def is_email(value: str) -> bool:
    return bool(_EMAIL_RE.match(value.strip()))


def normalize_tags(tags: list[str] | None) -> list[str]:
    out: list[str] = []
    for raw in tags or []:
        tag = raw.strip().lower()
        if not _TAG_RE.match(tag):
            raise InvalidInput(
                f"invalid tag {raw[:60]!r}: use 1-50 characters a-z, 0-9, _ . : - starting with a letter or digit"
            )
        if tag not in out:
            out.append(tag)
    return out


def like_pattern(text: str) -> str:
    """A case-insensitive substring pattern with LIKE wildcards escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def encode_cursor(created_at: datetime, row_id: UUID) -> str:
    raw = json.dumps({"c": created_at.isoformat(), "i": str(row_id)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime | None, UUID | None]:
    if not cursor:
        return None, None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(data["c"]), UUID(data["i"])
    except (ValueError, KeyError, TypeError):
        raise InvalidInput("cursor is not valid: pass the next_cursor value from the previous page") from None


# Stripe payment ids a ticket's text may mention (linked so refund webhooks find the ticket).
_PAYMENT_REF_RE = re.compile(r"\b((?:ch|py|pi|dp|du|re)_[A-Za-z0-9]{8,64})\b")


def payment_refs(*texts: str | None) -> list[str]:
    return sorted({m for t in texts if t for m in _PAYMENT_REF_RE.findall(t)})[:50]
