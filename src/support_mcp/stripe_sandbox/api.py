"""Request parsing, routing and endpoint behaviour for :class:`StripeDouble`.

Everything here runs with the double's lock held, against the :class:`Account` the
``Stripe-Account`` header selected (the platform account when the header is absent).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

from .apierrors import ApiError, no_such, unrecognized
from .objects import REFUND_REASONS, Account

_PATH_KINDS = {"charges": "charge", "customers": "customer", "payment_intents": "payment_intent",
               "disputes": "dispute", "refunds": "refund"}
_LIST_FILTERS = {"charge": {"customer", "payment_intent", "transfer_group"},
                 "customer": {"email", "test_clock"},
                 "payment_intent": {"customer"},
                 "dispute": {"charge", "payment_intent"},
                 "refund": {"charge", "payment_intent"}}
_LIST_COMMON = {"limit", "starting_after", "ending_before", "expand", "created"}
_EXPANDABLE = {"customer", "latest_charge", "charge", "payment_intent"}
_REFUND_PARAMS = {"amount", "charge", "payment_intent", "reason", "metadata", "expand",
                  "currency", "customer", "instructions_email", "origin",
                  "refund_application_fee", "reverse_transfer"}
_KEY_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


# ---------------------------------------------------------------------- form decoding
def parse_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Decode Stripe's bracket notation (``metadata[a]=1``, ``expand[0]=x``, ``expand[]=x``)."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        m = _KEY_RE.match(key)
        parts = [m.group(1), *re.findall(r"\[([^\[\]]*)\]", m.group(2))] if m else [key]
        node = root
        for i, part in enumerate(parts):
            if part == "":
                part = str(len(node))
            if i == len(parts) - 1:
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise ApiError(400, f"Invalid hash: {key}", param=parts[0])
                node = child
    return _listify(root, top=True)


def _listify(node: Any, top: bool = False, key: str = "") -> Any:
    if not isinstance(node, dict):
        return node
    out = {k: _listify(v, key=k) for k, v in node.items()}
    if not top and key != "metadata" and out and all(k.isdigit() for k in out):
        return [out[k] for k in sorted(out, key=int)]
    return out


def _int(params: dict[str, Any], name: str, *, minimum: int | None = None,
         maximum: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not isinstance(raw, str) or not re.fullmatch(r"-?\d+", raw):
        raise ApiError(400, f"Invalid integer: {raw}", code="parameter_invalid_integer", param=name)
    value = int(raw)
    if minimum is not None and value < minimum:
        msg = ("Invalid positive integer" if minimum == 1 and maximum is None
               else f"This value must be greater than or equal to {minimum}.")
        raise ApiError(400, msg, code="parameter_invalid_integer", param=name)
    if maximum is not None and value > maximum:
        raise ApiError(400, f"This value must be less than or equal to {maximum} (it currently is '{value}').",
                       code="parameter_invalid_integer", param=name)
    return value


def _check_known(params: dict[str, Any], allowed: set[str]) -> None:
    for name in params:
        if name not in allowed:
            raise ApiError(400, f"Received unknown parameter: {name}", code="parameter_unknown",
                           param=name)


# ---------------------------------------------------------------------- expansion
def _expand_list(params: dict[str, Any]) -> list[str]:
    exp = params.get("expand", [])
    if isinstance(exp, str):
        exp = [exp]
    if not isinstance(exp, list) or not all(isinstance(e, str) for e in exp):
        raise ApiError(400, "Invalid array", param="expand")
    return exp


def expand(acct: Account, obj: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    for path in paths:
        parts = path.split(".")
        if len(parts) > 4:
            raise ApiError(400, f"You cannot expand more than 4 levels of a property ({path}).",
                           param="expand")
        _expand_path(acct, obj, parts, path)
    return obj


def _expand_path(acct: Account, node: Any, parts: list[str], full: str) -> None:
    field, rest = parts[0], parts[1:]
    bad = ApiError(400, f"This property cannot be expanded ({full}).", param="expand")
    if not isinstance(node, dict) or field not in node:
        raise bad
    value = node[field]
    if field == "data" and isinstance(value, list):
        if not rest:
            raise bad
        for item in value:
            _expand_path(acct, item, rest, full)
        return
    if field not in _EXPANDABLE:
        raise bad
    if isinstance(value, str):
        target = acct.get(value)
        if target is None:
            raise bad
        value = node[field] = copy.deepcopy(target)
    if rest and value is not None:
        _expand_path(acct, value, rest, full)


# ---------------------------------------------------------------------- endpoints
def _retrieve(acct: Account, kind: str, obj_id: str, params: dict[str, Any]) -> dict[str, Any]:
    _check_known(params, {"expand"})
    obj = acct.get(obj_id, kind)
    if obj is None:
        raise no_such(kind, obj_id)
    return expand(acct, copy.deepcopy(obj), _expand_list(params))


def _created_ok(obj: dict[str, Any], created: Any) -> bool:
    if created is None:
        return True
    ts = obj["created"]
    if isinstance(created, str):
        return ts == _int({"created": created}, "created")
    if not isinstance(created, dict):
        raise ApiError(400, "Invalid created", param="created")
    ops = {"gt": ts.__gt__, "gte": ts.__ge__, "lt": ts.__lt__, "lte": ts.__le__}
    for op, bound in created.items():
        if op not in ops or not re.fullmatch(r"-?\d+", str(bound)):
            raise ApiError(400, f"Received unknown parameter: created[{op}]",
                           code="parameter_unknown", param=f"created[{op}]")
        if not ops[op](int(bound)):
            return False
    return True


def _list(acct: Account, kind: str, url: str, params: dict[str, Any]) -> dict[str, Any]:
    _check_known(params, _LIST_COMMON | _LIST_FILTERS[kind])
    limit = _int(params, "limit", minimum=1, maximum=100) or 10
    items = [o for o in acct.objects(kind)
             if all(o.get(f) == params[f] for f in _LIST_FILTERS[kind] if f in params)
             and _created_ok(o, params.get("created"))]
    after, before = params.get("starting_after"), params.get("ending_before")
    if after and before:
        raise ApiError(400, "You may only specify one of these parameters: ending_before, starting_after.")
    if after or before:
        cursor_id = after or before
        cursor = acct.get(cursor_id, kind)
        if cursor is None:
            raise no_such(kind, cursor_id, "starting_after" if after else "ending_before")
        key = acct.sort_key(cursor)
        if after:
            rest = [o for o in items if acct.sort_key(o) < key]
            page, has_more = rest[:limit], len(rest) > limit
        else:
            rest = [o for o in items if acct.sort_key(o) > key]
            page, has_more = rest[-limit:], len(rest) > limit
    else:
        page, has_more = items[:limit], len(items) > limit
    body = {"object": "list", "data": copy.deepcopy(page), "has_more": has_more, "url": url}
    return expand(acct, body, _expand_list(params))


def _money(amount: int, currency: str) -> str:
    return f"${amount / 100:.2f}" if currency == "usd" else f"{amount / 100:.2f} {currency.upper()}"


def _create_refund(acct: Account, params: dict[str, Any]) -> dict[str, Any]:
    _check_known(params, _REFUND_PARAMS)
    ch_id, pi_id = params.get("charge"), params.get("payment_intent")
    if not ch_id and not pi_id:
        raise ApiError(400, "One of the following params should be provided for this request: "
                            "payment_intent or charge.", code="parameter_missing")
    if pi_id:
        pi = acct.get(pi_id, "payment_intent")
        if pi is None:
            raise no_such("payment_intent", pi_id, "payment_intent")
        if not pi.get("latest_charge") or (ch_id and ch_id != pi["latest_charge"]):
            raise ApiError(400, f"This PaymentIntent ({pi_id}) does not have a successful charge "
                                "to refund.", code="charge_not_refundable", param="payment_intent")
        ch_id = pi["latest_charge"]
    ch = acct.get(ch_id, "charge")
    if ch is None:
        raise no_such("charge", ch_id, "charge")
    reason = params.get("reason")
    if reason is not None and reason not in REFUND_REASONS:
        raise ApiError(400, "Invalid reason: must be one of duplicate, fraudulent, or "
                            "requested_by_customer", code="parameter_invalid_string", param="reason")
    metadata = params.get("metadata", {})
    if metadata == "":
        metadata = {}
    if not isinstance(metadata, dict):
        raise ApiError(400, "Invalid object", code="parameter_invalid_string", param="metadata")
    amount = _int(params, "amount", minimum=1)
    if ch["status"] != "succeeded":
        raise ApiError(400, f"Charge {ch['id']} has not succeeded; only succeeded charges can be "
                            "refunded.", code="charge_not_refundable", param="charge")
    if ch.get("disputed"):
        raise ApiError(400, f"Charge {ch['id']} has been charged back; cannot issue a refund.",
                       code="charge_disputed", param="charge")
    remaining = ch["amount"] - ch["amount_refunded"]
    if ch.get("refunded") or remaining <= 0:
        raise ApiError(400, f"Charge {ch['id']} has already been refunded.",
                       code="charge_already_refunded", param="charge")
    if amount is not None and amount > remaining:
        raise ApiError(400, f"Refund amount ({_money(amount, ch['currency'])}) is greater than "
                            f"unrefunded amount on charge ({_money(remaining, ch['currency'])})",
                       code="amount_too_large", param="amount")
    refund = acct.create_refund(ch, remaining if amount is None else amount, reason, metadata)
    return expand(acct, copy.deepcopy(refund), _expand_list(params))


def dispatch(acct: Account, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
    """Route one authenticated request; returns the JSON body (raises :class:`ApiError`)."""
    parts = path.strip("/").split("/")
    if len(parts) < 2 or parts[0] != "v1" or parts[1] not in _PATH_KINDS or len(parts) > 3:
        raise unrecognized(method, path)
    kind = _PATH_KINDS[parts[1]]
    if len(parts) == 2:
        if method == "GET":
            return _list(acct, kind, f"/v1/{parts[1]}", params)
        if method == "POST" and kind == "refund":
            return _create_refund(acct, params)
    elif method == "GET" and parts[2] != "search" and parts[2]:
        return _retrieve(acct, kind, parts[2], params)
    raise unrecognized(method, path)

