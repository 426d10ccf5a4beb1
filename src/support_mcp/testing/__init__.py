"""Test support shipped with the package: :class:`StripeDouble`, a local Stripe API server."""

from .stripe_double import (
    Account,
    ApiError,
    RecordedRequest,
    StripeDouble,
    make_event,
    sign_webhook,
    signed_webhook,
)

__all__ = ["Account", "ApiError", "RecordedRequest", "StripeDouble", "make_event",
           "sign_webhook", "signed_webhook"]
