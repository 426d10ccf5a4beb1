"""One-line argument errors: name each field and the rule, never echo the (possibly huge,
possibly private) value back."""

from __future__ import annotations

from pydantic import ValidationError


def summarize(exc: ValidationError) -> str:
    parts = []
    errors = exc.errors(include_url=False, include_input=False)
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "arguments"
        msg = "is required" if err["type"] == "missing" else err["msg"]
        parts.append(f"{loc}: {msg}")
    more = len(errors) - len(parts)
    return "invalid arguments: " + "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
