"""The small error hierarchy every layer speaks. Messages are safe to show to a client."""

from __future__ import annotations


class SupportError(Exception):
    """Base class. `str(err)` is a one-line, actionable message without internals."""

    kind = "error"


class InvalidInput(SupportError):
    kind = "invalid_input"


class NotFound(SupportError):
    kind = "not_found"


class NotPermitted(SupportError):
    kind = "not_permitted"


class Conflict(SupportError):
    kind = "conflict"


class TenantUnavailable(SupportError):
    """The tenant exists but is suspended."""

    kind = "tenant_unavailable"


class UpstreamUnavailable(SupportError):
    """A backend (database, vector store, Stripe) cannot be reached or timed out."""

    kind = "upstream_unavailable"
    retry_after = 5  # seconds an HTTP 503 asks the client to wait (Retry-After)


class NotConnected(SupportError):
    """The tenant has no Stripe connected account (or the server no platform key)."""

    kind = "not_connected"


class MigrationFailed(SupportError):
    kind = "migration_failed"


class RateLimited(SupportError):
    kind = "rate_limited"


class ConfirmationRequired(SupportError):
    kind = "confirmation_required"
