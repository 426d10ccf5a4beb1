"""StripeDouble: the sandbox in memory, a local HTTP server speaking Stripe's v1 wire format.

The project's only Stripe fake (tests and benches run against it; fault injection and request
recording are for them). The per-episode sandbox (listener.py) shares its objects and API.
Drive it through the real ``stripe`` SDK::

    with StripeDouble() as sd:
        acct = sd.add_account("acct_1")
        ch = acct.charge(amount=2500, customer=acct.customer(email="a@example.com"))
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": sd.base_url},
                                     max_network_retries=0)
        client.v1.charges.retrieve(ch["id"], options={"stripe_account": "acct_1"})

Data lives per account and is selected by the ``Stripe-Account`` header (no header: the
platform's own data, ``sd.platform``); an unknown account gets Stripe's 403. Endpoints:
GET /v1/{charges,customers,payment_intents,disputes,refunds}[/{id}] (lists paginate with
limit/starting_after/ending_before, filter like Stripe, honour ``expand[]``) and
POST /v1/refunds (validation and Idempotency-Key like Stripe). Idempotent results are stored
for 2xx answers only (Stripe also stores errors raised after execution began).
Parts: objects (Account, object shapes), api (routing, endpoints), wire (request records,
faults, handler), events (sign_webhook, make_event, signed_webhook).
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .api import dispatch, parse_form
from .apierrors import ApiError, account_invalid, authenticate, idempotency_mismatch
from .events import API_VERSION, make_event, sign_webhook, signed_webhook
from .ids import new_id
from .objects import Account
from .wire import (
    FAULT_DEFAULTS,
    SERVER_ERROR,
    Fault,
    Handler,
    Headers,
    RecordedRequest,
    redact,
    take_fault,
)

__all__ = ["Account", "ApiError", "RecordedRequest", "StripeDouble", "make_event",
           "sign_webhook", "signed_webhook"]


class StripeDouble:
    """Stripe v1 API double on ``127.0.0.1:<random port>``; see the module docstring.

    ``api_keys``: if given, only these keys authenticate (default: any well-formed
    ``sk_``/``rk_`` test or live key). Use as a context manager or call start()/stop().
    """

    def __init__(self, *, api_keys: set[str] | None = None, host: str = "127.0.0.1") -> None:
        self.api_keys = api_keys
        self._host = host
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._accounts: dict[str | None, Account] = {None: Account(None, self._lock)}
        self._requests: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._delays: list[Fault] = []
        self._idempotency: dict[tuple[str, str | None, str], tuple[Any, ...]] = {}
        self._conns: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.errors: list[BaseException] = []  # bugs inside the double (answered as 500)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> StripeDouble:
        self._stopping.clear()
        server = ThreadingHTTPServer((self._host, 0), Handler)
        server.daemon_threads = True
        server.double = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                                        name="stripe-double", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            for conn in list(self._conns):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> StripeDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "StripeDouble is not running"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def client(self, api_key: str = "sk_test_double", *, max_network_retries: int = 0,
               **kwargs: Any) -> Any:
        """A real ``stripe.StripeClient`` pointed at this double."""
        import stripe

        return stripe.StripeClient(api_key, base_addresses={"api": self.base_url},
                                   max_network_retries=max_network_retries, **kwargs)

    # ------------------------------------------------------------------ accounts
    def add_account(self, account_id: str | None = None) -> Account:
        account_id = account_id or new_id("acct", 16)
        if not account_id.startswith("acct_"):
            raise ValueError(f"account ids start with acct_: {account_id!r}")
        with self._lock:
            if account_id in self._accounts:
                raise ValueError(f"account {account_id} already exists")
            acct = self._accounts[account_id] = Account(account_id, self._lock)
            return acct

    def account(self, account_id: str | None) -> Account:
        return self._accounts[account_id]

    @property
    def platform(self) -> Account:
        """The platform's own data: what requests without ``Stripe-Account`` see."""
        return self._accounts[None]

    # ------------------------------------------------------------------ faults
    def fail_next(self, n: int = 1, status: int = 500, *, code: str | None = None,
                  message: str | None = None, type: str | None = None,
                  should_retry: bool | None = None, path: str | None = None) -> None:
        """The next ``n`` requests (optionally only those whose path starts with ``path``)
        get ``status`` with a Stripe error body (500+: ``api_error`` and
        ``Stripe-Should-Retry: true`` unless ``should_retry`` says otherwise)."""
        with self._lock:
            self._faults.append(Fault(n, path, status, type=type, code=code, message=message,
                                       should_retry=should_retry))

    def rate_limit_next(self, n: int = 1, *, path: str | None = None) -> None:
        """The next ``n`` requests get 429 (``stripe.RateLimitError``; the SDK won't retry)."""
        self.fail_next(n, 429, path=path)

    def delay(self, seconds: float, *, count: int | None = None, path: str | None = None) -> None:
        """Answer after ``seconds`` (every request until reset, or only the next ``count``)."""
        with self._lock:
            self._delays.append(Fault(count, path, seconds=seconds))

    def reset_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._delays.clear()

    # ------------------------------------------------------------------ recording
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # ------------------------------------------------------------------ handling
    def _handle(self, method: str, target: str, raw_headers: list[tuple[str, str]],
                body: bytes) -> tuple[int, dict[str, str], bytes]:
        request_id = new_id("req", 14)
        url = urlsplit(target)
        path = unquote(url.path)
        headers = Headers(raw_headers)
        out = {"Request-Id": request_id,
               "Stripe-Version": headers.get("Stripe-Version") or API_VERSION}
        try:
            query = parse_form(parse_qsl(url.query, keep_blank_values=True))
            form = (parse_form(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
                    if body else {})
        except ApiError as e:
            query, form, bad = {}, {}, e
        else:
            bad = None
        shown = [(k, redact(v) if k.lower() == "authorization" else v) for k, v in raw_headers]
        rec = RecordedRequest(method, path, query, form, Headers(shown), request_id)
        with self._lock:
            self._requests.append(rec)
            delay = take_fault(self._delays, path)
            fault = take_fault(self._faults, path)
        if delay is not None:
            self._stopping.wait(delay.seconds)
        try:
            if bad is not None:
                raise bad
            if fault is not None:
                raise self._fault_error(fault)
            with self._lock:
                status, payload, extra = self._process(method, path, headers, {**query, **form},
                                                       request_id)
        except ApiError as e:
            status, payload, extra = e.status, e.body(request_id), e.headers
        except Exception as e:  # a bug in the double: surface it, answer like Stripe would
            self.errors.append(e)
            err = ApiError(500, SERVER_ERROR[2], type="api_error")
            status, payload, extra = 500, err.body(request_id), {}
        out.update(extra)
        rec.status = status
        return status, out, (json.dumps(payload, indent=2) + "\n").encode("utf-8")

    def _fault_error(self, f: Fault) -> ApiError:
        type_, code, message = FAULT_DEFAULTS.get(f.status, SERVER_ERROR)
        retry = f.should_retry if f.should_retry is not None else (True if f.status >= 500 else None)
        headers = {} if retry is None else {"Stripe-Should-Retry": "true" if retry else "false"}
        extra = {"decline_code": "generic_decline"} if f.status == 402 else {}
        return ApiError(f.status, f.message or message, type=f.type or type_, code=f.code or code,
                        headers=headers, **extra)

    def _authenticate(self, headers: Headers) -> str:
        return authenticate(headers, lambda key: self.api_keys is None or key in self.api_keys)

    def _process(self, method: str, path: str, headers: Headers, params: dict[str, Any],
                 request_id: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        key = self._authenticate(headers)
        account_id = headers.get("Stripe-Account") or None
        acct = self._accounts.get(account_id)
        if acct is None:
            raise account_invalid(key, account_id)
        idem = headers.get("Idempotency-Key") if method == "POST" else None
        if idem is None:
            return 200, dispatch(acct, method, path, params), {}
        if len(idem) > 255:
            raise ApiError(400, "Idempotency-Key must be at most 255 characters long.")
        slot = (key, account_id, idem)
        seen = self._idempotency.get(slot)
        if seen is not None:
            s_method, s_path, s_params, s_status, s_body, s_request = seen
            if (s_method, s_path, s_params) != (method, path, params):
                raise idempotency_mismatch(idem)
            return s_status, s_body, {"Idempotency-Key": idem, "Idempotent-Replayed": "true",
                                      "Original-Request": s_request}
        body = dispatch(acct, method, path, params)
        self._idempotency[slot] = (method, path, params, 200, body, request_id)
        return 200, body, {"Idempotency-Key": idem, "Original-Request": request_id}
