"""HTTP plumbing for :class:`StripeDouble`: request records, fault specs, the handler."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

FAULT_DEFAULTS = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", None, "Invalid API Key provided."),
    402: ("card_error", "card_declined", "Your card was declined."),
    403: ("invalid_request_error", None, "You do not have permission to perform this request."),
    404: ("invalid_request_error", "resource_missing", "No such object."),
    409: ("idempotency_error", None, "There is currently another in-progress request using "
                                     "this Idempotent Key (that probably means you submitted "
                                     "twice, and the other request is still going through)."),
    429: ("invalid_request_error", "rate_limit", "Request rate limit exceeded. Learn more about "
          "rate limits here https://stripe.com/docs/rate-limits."),
}
SERVER_ERROR = ("api_error", None, "Sorry, something went wrong. We've already been notified "
                 "of the problem, but if you need any help, you can reach us at "
                 "support.stripe.com/contact.")


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only request headers."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = {k.lower(): (k, v) for k, v in items}

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


@dataclass
class RecordedRequest:
    """One request as the double saw it (``Authorization`` redacted to ``Bearer sk_test_***``)."""

    method: str
    path: str
    query: dict[str, Any]
    form: dict[str, Any]
    headers: Headers
    request_id: str
    status: int | None = None  # filled in once answered
    at: float = field(default_factory=time.time)

    @property
    def params(self) -> dict[str, Any]:
        return {**self.query, **self.form}

    @property
    def stripe_account(self) -> str | None:
        return self.headers.get("Stripe-Account")

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("Idempotency-Key")

    @property
    def authorization(self) -> str | None:
        return self.headers.get("Authorization")


@dataclass
class Fault:
    remaining: int | None  # None: until reset
    path: str | None
    status: int = 0
    seconds: float = 0.0
    type: str | None = None
    code: str | None = None
    message: str | None = None
    should_retry: bool | None = None


def redact(auth: str) -> str:
    scheme, _, key = auth.partition(" ")
    m = re.match(r"^((?:sk|rk|pk)_(?:test|live)_)", key)
    return f"{scheme} {m.group(1) if m else ''}***"


def take_fault(faults: list[Fault], path: str) -> Fault | None:
    for f in faults:
        if f.path is None or path.startswith(f.path):
            if f.remaining is not None:
                f.remaining -= 1
                if f.remaining <= 0:
                    faults.remove(f)
            return f
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        # headers and body go out as separate writes: without this, Nagle + delayed ACK
        # add ~40 ms to every response
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.double._lock:  # type: ignore[attr-defined]
            self.server.double._conns.add(self.connection)  # type: ignore[attr-defined]

    def finish(self) -> None:
        with self.server.double._lock:  # type: ignore[attr-defined]
            self.server.double._conns.discard(self.connection)  # type: ignore[attr-defined]
        try:
            super().finish()
        except OSError:
            pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        double = self.server.double  # type: ignore[attr-defined]
        status, headers, payload = double._handle(self.command, self.path,
                                                  list(self.headers.items()), body)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up (timeout) or the double is stopping
            self.close_connection = True

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass
