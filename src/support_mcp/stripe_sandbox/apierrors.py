"""Stripe's error answers (the JSON error shape) and request authentication, for both hosts."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from typing import Any

DOCS = "https://stripe.com/docs/error-codes/"
API_KEY_RE = re.compile(r"^(sk|rk)_(test|live)_[A-Za-z0-9_]+$")


class ApiError(Exception):
    """An error answered with Stripe's JSON error shape."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.code, self.param, self.headers, self.extra = code, param, headers or {}, extra

    def body(self, request_id: str) -> dict[str, Any]:
        err: dict[str, Any] = {"message": self.message, "type": self.type}
        if self.code:
            err["code"] = self.code
            err["doc_url"] = DOCS + self.code.replace("_", "-")
        if self.param:
            err["param"] = self.param
        err["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
        err.update(self.extra)
        return {"error": err}


def no_such(kind: str, obj_id: str, param: str = "id") -> ApiError:
    return ApiError(404, f"No such {kind}: '{obj_id}'", code="resource_missing", param=param)


def authenticate(headers: Mapping[str, str], accept: Callable[[str], bool]) -> str:
    """The API key of a request (Bearer or Basic, as the SDK sends it); 401 like Stripe unless
    it is a well-formed ``sk_``/``rk_`` key that ``accept`` takes."""
    auth = headers.get("Authorization", "")
    scheme, _, key = auth.partition(" ")
    if scheme.lower() == "basic":
        key = base64.b64decode(key + "==").decode("utf-8", "replace").split(":")[0]
    elif scheme.lower() != "bearer":
        key = ""
    if not key:
        raise ApiError(401, "You did not provide an API key. You need to provide your API "
                            "key in the Authorization header, using Bearer auth (e.g. "
                            "'Authorization: Bearer YOUR_SECRET_KEY'). See "
                            "https://stripe.com/docs/api#authentication for details, or we "
                            "can help at https://support.stripe.com/.")
    if not API_KEY_RE.match(key) or not accept(key):
        shown = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:] if len(key) > 12 else key
        raise ApiError(401, f"Invalid API Key provided: {shown}")
    return key


def account_invalid(key: str, account_id: str | None) -> ApiError:
    return ApiError(403, f"The provided key '{key[:8]}***{key[-4:]}' does not have access "
                         f"to account '{account_id}' (or that account does not exist). "
                         "Application access may have been revoked.", code="account_invalid")


def idempotency_mismatch(idem: str) -> ApiError:
    return ApiError(400, "Keys for idempotent requests can only be used with the same parameters they were "
                         f"first used with. Try using a key other than '{idem}' if you meant to execute a "
                         "different request.", type="idempotency_error")


def unrecognized(method: str, path: str) -> ApiError:
    return ApiError(404, f"Unrecognized request URL ({method}: {path}). Please see "
                         "https://stripe.com/docs or we can help at https://support.stripe.com/.")
