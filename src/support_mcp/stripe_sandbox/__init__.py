"""The Stripe sandbox: a local server speaking Stripe's v1 wire format, for evaluation runs and tests.

Two hosts for one API (api.py) over one object model (objects.py):
- `StripeDouble` (double.py): in memory, in a thread, with fault injection and request recording;
  what the test suite and benches drive the real `stripe` SDK against.
- the per-episode sandbox (store.py, listener.py): objects kept in PostgreSQL (admin-only tables,
  sql/global/0011), one connected account per episode, served to the episode tenants of a server
  started with SUPPORT_MCP_STRIPE_SANDBOX=on. It never runs unless asked.
"""

from .apierrors import ApiError
from .double import StripeDouble
from .events import make_event, sign_webhook, signed_webhook
from .objects import Account
from .wire import RecordedRequest

__all__ = ["Account", "ApiError", "RecordedRequest", "StripeDouble", "make_event", "sign_webhook",
           "signed_webhook"]
