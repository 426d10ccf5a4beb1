"""StripeDouble, driven only through the real stripe SDK (16.x)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import stripe

from support_mcp.stripe_sandbox import StripeDouble, make_event, sign_webhook, signed_webhook

A1 = {"stripe_account": "acct_1"}
A2 = {"stripe_account": "acct_2"}


@pytest.fixture
def sd() -> Iterator[StripeDouble]:
    with StripeDouble() as double:
        double.add_account("acct_1")
        double.add_account("acct_2")
        yield double
        assert not double.errors  # exceptions inside the double itself


def client(sd: StripeDouble, **kwargs) -> stripe.StripeClient:
    kwargs.setdefault("max_network_retries", 0)
    return stripe.StripeClient("sk_test_x", base_addresses={"api": sd.base_url}, **kwargs)


# ---------------------------------------------------------------------------- reads
def test_retrieve_charge_with_expand_and_response_headers(sd: StripeDouble) -> None:
    acct = sd.account("acct_1")
    cus = acct.customer(email="ada@example.com", name="Ada")
    ch = acct.charge(amount=2500, currency="eur", customer=cus, description="Pro plan")

    got = client(sd).v1.charges.retrieve(ch["id"], options=A1)
    assert isinstance(got, stripe.Charge)
    assert (got.id, got.amount, got.currency, got.status) == (ch["id"], 2500, "eur", "succeeded")
    assert got.customer == cus["id"] and got.refunded is False and got.amount_refunded == 0
    assert got.receipt_url.startswith("https://pay.stripe.com/receipts/")
    assert got.last_response.request_id.startswith("req_")
    assert got.last_response.headers["Stripe-Version"] == stripe.api_version

    expanded = client(sd).v1.charges.retrieve(ch["id"], {"expand": ["customer"]}, options=A1)
    assert isinstance(expanded.customer, stripe.Customer)
    assert expanded.customer.email == "ada@example.com"


def test_payment_intent_latest_charge_customer_and_dispute(sd: StripeDouble) -> None:
    acct = sd.account("acct_1")
    cus = acct.customer(email="bob@example.com")
    pi = acct.payment_intent(amount=900, customer=cus)
    dp = acct.dispute(charge=pi["latest_charge"], reason="fraudulent")
    c = client(sd)

    got = c.v1.payment_intents.retrieve(pi["id"], {"expand": ["latest_charge.customer"]},
                                        options=A1)
    assert got.status == "succeeded" and got.amount_received == 900
    assert got.latest_charge.id == pi["latest_charge"] and got.latest_charge.disputed is True
    assert got.latest_charge.customer.email == "bob@example.com"

    found = c.v1.customers.list({"email": "bob@example.com"}, options=A1)
    assert [x.id for x in found.data] == [cus["id"]]
    assert c.v1.customers.list({"email": "nobody@example.com"}, options=A1).data == []
    assert c.v1.customers.retrieve(cus["id"], options=A1).email == "bob@example.com"

    d = c.v1.disputes.retrieve(dp["id"], options=A1)
    assert (d.charge, d.amount, d.status, d.reason) == (pi["latest_charge"], 900,
                                                        "needs_response", "fraudulent")


def test_list_pagination_and_auto_paging_carry_the_account(sd: StripeDouble) -> None:
    acct = sd.account("acct_1")
    cus = acct.customer()
    now = int(time.time())
    ids = [acct.charge(amount=100 + i, customer=cus, created=now - 100 + i)["id"]
           for i in range(25)]
    acct.charge(amount=1)  # another customer's charge
    newest_first = ids[::-1]
    c = client(sd)

    page = c.v1.charges.list({"customer": cus["id"], "limit": 10}, options=A1)
    assert [x.id for x in page.data] == newest_first[:10] and page.has_more is True
    assert page.url == "/v1/charges" and page.object == "list"
    page2 = c.v1.charges.list({"customer": cus["id"], "limit": 10,
                               "starting_after": page.data[-1].id}, options=A1)
    assert [x.id for x in page2.data] == newest_first[10:20] and page2.has_more is True
    back = c.v1.charges.list({"customer": cus["id"], "limit": 5,
                              "ending_before": page2.data[0].id}, options=A1)
    assert [x.id for x in back.data] == newest_first[5:10] and back.has_more is True

    sd.clear_requests()
    first = c.v1.charges.list({"customer": cus["id"], "limit": 10}, options=A1)
    assert [x.id for x in first.auto_paging_iter()] == newest_first
    reqs = sd.requests
    assert len(reqs) == 3
    assert all(r.stripe_account == "acct_1" and r.path == "/v1/charges" for r in reqs)
    assert reqs[2].query == {"customer": cus["id"], "limit": "10", "starting_after": ids[5]}
    assert reqs[0].authorization == "Bearer sk_test_***"

    assert len(c.v1.charges.list({"limit": 100}, options=A1).data) == 26
    with pytest.raises(stripe.InvalidRequestError) as e:
        c.v1.charges.list({"limit": 101}, options=A1)
    assert e.value.code == "parameter_invalid_integer"


def test_disputes_list_with_client_side_status_filter(sd: StripeDouble) -> None:
    acct = sd.account("acct_1")
    open_ = [acct.dispute(charge=acct.charge(), status="needs_response") for _ in range(3)]
    acct.dispute(charge=acct.charge(), status="won")
    disputes = client(sd).v1.disputes.list({"limit": 2}, options=A1)
    assert disputes.has_more is True
    needing = [d.id for d in disputes.auto_paging_iter() if d.status == "needs_response"]
    assert sorted(needing) == sorted(d["id"] for d in open_)


def test_other_accounts_and_the_platform_see_nothing(sd: StripeDouble) -> None:
    acct = sd.account("acct_1")
    ch = acct.charge()
    cus = acct.customer(email="x@example.com")
    c = client(sd)
    for options in (A2, {}):
        with pytest.raises(stripe.InvalidRequestError) as e:
            c.v1.charges.retrieve(ch["id"], options=options)
        assert e.value.code == "resource_missing" and e.value.http_status == 404
        assert e.value.param == "id" and e.value.user_message == f"No such charge: '{ch['id']}'"
        assert e.value.error.doc_url == "https://stripe.com/docs/error-codes/resource-missing"
        with pytest.raises(stripe.InvalidRequestError):
            c.v1.customers.retrieve(cus["id"], options=options)
        assert c.v1.charges.list(options=options).data == []
        assert c.v1.customers.list({"email": "x@example.com"}, options=options).data == []
        with pytest.raises(stripe.InvalidRequestError) as e:
            c.v1.refunds.create({"charge": ch["id"]}, options=options)
        assert e.value.code == "resource_missing" and e.value.param == "charge"
    assert sd.account("acct_1").get(ch["id"])["amount_refunded"] == 0

    sd.platform.charge(id="ch_platform")
    with pytest.raises(stripe.InvalidRequestError):
        c.v1.charges.retrieve("ch_platform", options=A1)
    assert c.v1.charges.retrieve("ch_platform").id == "ch_platform"

    with pytest.raises(stripe.PermissionError) as e:
        c.v1.charges.retrieve(ch["id"], options={"stripe_account": "acct_unknown"})
    assert e.value.http_status == 403 and e.value.error.code == "account_invalid"


# ---------------------------------------------------------------------------- refunds
def test_refunds_update_the_charge_and_validate_like_stripe(sd: StripeDouble) -> None:
    acct = sd.account("acct_1")
    ch = acct.charge(amount=1000)
    c = client(sd)

    r = c.v1.refunds.create({"charge": ch["id"], "amount": 300, "reason": "requested_by_customer",
                             "metadata": {"ticket": "T-42"}}, options=A1)
    assert isinstance(r, stripe.Refund) and r.id.startswith("re_")
    assert (r.amount, r.status, r.charge, r.reason) == (300, "succeeded", ch["id"],
                                                        "requested_by_customer")
    assert r.metadata.to_dict() == {"ticket": "T-42"}
    got = c.v1.charges.retrieve(ch["id"], options=A1)
    assert (got.amount_refunded, got.refunded) == (300, False)

    bad = {"amount_too_large": {"amount": 701}, "parameter_invalid_integer": {"amount": 0},
           "parameter_invalid_string": {"reason": "changed_mind"},
           "parameter_unknown": {"amout": 5}}
    for code, params in bad.items():
        with pytest.raises(stripe.InvalidRequestError) as e:
            c.v1.refunds.create({"charge": ch["id"], **params}, options=A1)
        assert e.value.code == code and e.value.http_status == 400, code
    assert "greater than unrefunded amount on charge ($7.00)" in str(
        pytest.raises(stripe.InvalidRequestError, c.v1.refunds.create,
                      {"charge": ch["id"], "amount": 701}, options=A1).value)

    rest = c.v1.refunds.create({"charge": ch["id"]}, options=A1)
    assert rest.amount == 700
    assert c.v1.charges.retrieve(ch["id"], options=A1).refunded is True
    with pytest.raises(stripe.InvalidRequestError) as e:
        c.v1.refunds.create({"charge": ch["id"], "amount": 1}, options=A1)
    assert e.value.code == "charge_already_refunded"

    listed = c.v1.refunds.list({"charge": ch["id"]}, options=A1)
    assert [x.id for x in listed.data] == [rest.id, r.id]

    pi = acct.payment_intent(amount=500)
    by_pi = c.v1.refunds.create({"payment_intent": pi["id"]}, options=A1)
    assert (by_pi.amount, by_pi.charge, by_pi.payment_intent) == (500, pi["latest_charge"],
                                                                  pi["id"])
    disputed = acct.dispute(charge=acct.charge())["charge"]
    with pytest.raises(stripe.InvalidRequestError) as e:
        c.v1.refunds.create({"charge": disputed}, options=A1)
    assert e.value.code == "charge_disputed"


def test_idempotent_replay_and_conflict(sd: StripeDouble) -> None:
    acct = sd.account("acct_1")
    ch = acct.charge(amount=1000)
    c = client(sd)
    opts = {**A1, "idempotency_key": "refund-T-42"}

    first = c.v1.refunds.create({"charge": ch["id"], "amount": 400}, options=opts)
    again = c.v1.refunds.create({"charge": ch["id"], "amount": 400}, options=opts)
    assert again.id == first.id and again.to_dict() == first.to_dict()
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert acct.get(ch["id"])["amount_refunded"] == 400

    with pytest.raises(stripe.IdempotencyError) as e:
        c.v1.refunds.create({"charge": ch["id"], "amount": 500}, options=opts)
    assert e.value.http_status == 400 and e.value.error.type == "idempotency_error"
    assert [r.idempotency_key for r in sd.requests] == ["refund-T-42"] * 3

    # keys are scoped per account: acct_2's same key is a new request
    other = sd.account("acct_2").charge(id=ch["id"], amount=1000)
    r2 = c.v1.refunds.create({"charge": other["id"], "amount": 400},
                             options={**A2, "idempotency_key": "refund-T-42"})
    assert r2.id != first.id and other["amount_refunded"] == 400

    # without an explicit key the SDK sends a fresh one per call: two refunds
    c.v1.refunds.create({"charge": ch["id"], "amount": 100}, options=A1)
    c.v1.refunds.create({"charge": ch["id"], "amount": 100}, options=A1)
    assert acct.get(ch["id"])["amount_refunded"] == 600


def test_concurrent_refunds_never_over_refund(sd: StripeDouble) -> None:
    ch = sd.account("acct_1").charge(amount=1000)
    c = client(sd)

    def refund(_: int) -> str:
        try:
            c.v1.refunds.create({"charge": ch["id"], "amount": 100}, options=A1)
            return "ok"
        except stripe.InvalidRequestError as e:
            return e.code or "?"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(refund, range(14)))
    assert outcomes.count("ok") == 10
    assert set(outcomes) - {"ok"} == {"charge_already_refunded"}
    assert (ch["amount_refunded"], ch["refunded"]) == (1000, True)
    assert not sd.errors


# ---------------------------------------------------------------------------- faults
def test_500_then_success_is_retried_by_the_sdk(sd: StripeDouble) -> None:
    ch = sd.account("acct_1").charge(amount=1000)
    sd.fail_next(2, status=500)
    got = client(sd, max_network_retries=2).v1.charges.retrieve(ch["id"], options=A1)
    assert got.id == ch["id"]
    assert [r.status for r in sd.requests] == [500, 500, 200]

    # a retried POST reuses its idempotency key: exactly one refund
    sd.clear_requests()
    sd.fail_next(1, path="/v1/refunds")
    refund = client(sd, max_network_retries=2).v1.refunds.create(
        {"charge": ch["id"], "amount": 100}, options=A1)
    reqs = sd.requests
    assert [r.status for r in reqs] == [500, 200]
    assert reqs[0].idempotency_key == reqs[1].idempotency_key is not None
    assert sd.account("acct_1").objects("refund") == [sd.account("acct_1").get(refund.id)]

    sd.fail_next(1)
    with pytest.raises(stripe.APIError) as e:
        client(sd).v1.charges.retrieve(ch["id"], options=A1)
    assert e.value.http_status == 500 and e.value.headers["Stripe-Should-Retry"] == "true"
    assert e.value.error.type == "api_error"


def test_429_card_error_and_reset(sd: StripeDouble) -> None:
    ch = sd.account("acct_1").charge()
    c = client(sd, max_network_retries=2)
    sd.rate_limit_next(1)
    with pytest.raises(stripe.RateLimitError) as e:
        c.v1.charges.retrieve(ch["id"], options=A1)
    assert e.value.http_status == 429 and e.value.error.code == "rate_limit"
    assert len(sd.requests) == 1  # the SDK does not retry a plain 429
    assert c.v1.charges.retrieve(ch["id"], options=A1).id == ch["id"]

    sd.fail_next(1, status=402)
    with pytest.raises(stripe.CardError) as e:
        c.v1.charges.retrieve(ch["id"], options=A1)
    assert e.value.code == "card_declined"

    sd.rate_limit_next(5)
    sd.reset_faults()
    assert c.v1.charges.retrieve(ch["id"], options=A1).id == ch["id"]


def test_slow_responses_hit_the_client_timeout(sd: StripeDouble) -> None:
    ch = sd.account("acct_1").charge()
    sd.delay(2.0)
    c = client(sd, http_client=stripe.RequestsClient(timeout=0.3))
    start = time.monotonic()
    with pytest.raises(stripe.APIConnectionError):
        c.v1.charges.retrieve(ch["id"], options=A1)
    assert time.monotonic() - start < 1.5
    sd.reset_faults()
    assert c.v1.charges.retrieve(ch["id"], options=A1).id == ch["id"]


def test_api_keys_are_checked() -> None:
    with StripeDouble(api_keys={"sk_test_good", "rk_test_restricted"}) as sd:
        sd.platform.customer(id="cus_1")
        for key in ("sk_test_good", "rk_test_restricted"):
            c = stripe.StripeClient(key, base_addresses={"api": sd.base_url})
            assert c.v1.customers.retrieve("cus_1").id == "cus_1"
        for key in ("sk_test_bad", "not-a-key"):
            c = stripe.StripeClient(key, base_addresses={"api": sd.base_url})
            with pytest.raises(stripe.AuthenticationError) as e:
                c.v1.customers.retrieve("cus_1")
            assert e.value.http_status == 401
        assert [r.authorization for r in sd.requests][-2:] == ["Bearer sk_test_***", "Bearer ***"]


def test_unknown_route_and_params_fail_like_stripe(sd: StripeDouble) -> None:
    c = client(sd)
    with pytest.raises(stripe.InvalidRequestError) as e:
        c.v1.balance.retrieve(options=A1)
    assert e.value.http_status == 404 and "Unrecognized request URL" in str(e.value)
    with pytest.raises(stripe.InvalidRequestError) as e:
        c.v1.charges.list({"status": "succeeded"}, options=A1)  # type: ignore[typeddict-unknown-key]
    assert e.value.code == "parameter_unknown" and e.value.param == "status"


# ---------------------------------------------------------------------------- async
async def test_async_calls() -> None:
    with StripeDouble() as sd:
        acct = sd.add_account("acct_1")
        cus = acct.customer()
        ids = [acct.charge(customer=cus)["id"] for _ in range(3)]
        c = client(sd)
        got = await c.v1.charges.retrieve_async(ids[0], options=A1)
        assert got.id == ids[0]
        page = await c.v1.charges.list_async({"customer": cus["id"], "limit": 2}, options=A1)
        assert sorted([ch.id async for ch in page.auto_paging_iter()]) == sorted(ids)
        refund = await c.v1.refunds.create_async({"charge": ids[0]}, options=A1)
        assert refund.amount == 1000 and acct.get(ids[0])["refunded"] is True
        assert {r.stripe_account for r in sd.requests} == {"acct_1"}

        sd.delay(2.0)
        slow = client(sd, http_client=stripe.HTTPXClient(timeout=0.3))
        with pytest.raises(stripe.APIConnectionError):
            await slow.v1.charges.retrieve_async(ids[0], options=A1)


# ---------------------------------------------------------------------------- webhooks
def test_webhook_signatures() -> None:
    secret = "whsec_test_secret"
    dispute = {"id": "dp_1", "object": "dispute", "charge": "ch_1", "amount": 500,
               "status": "needs_response", "reason": "fraudulent"}
    event = make_event("charge.dispute.created", dispute, "acct_1", event_id="evt_1")
    assert event["account"] == "acct_1" and event["livemode"] is False
    payload = json.dumps(event)

    got = stripe.Webhook.construct_event(payload, sign_webhook(payload, secret), secret)
    assert (got.id, got.type, got.account) == ("evt_1", "charge.dispute.created", "acct_1")
    assert got.data.object.id == "dp_1"

    body, headers = signed_webhook(event, secret)
    assert stripe.Webhook.construct_event(body, headers["Stripe-Signature"], secret).id == "evt_1"

    tampered = payload.replace('"amount": 500', '"amount": 5')
    for args in ((tampered, sign_webhook(payload, secret), secret),
                 (payload, sign_webhook(payload, "whsec_other"), secret),
                 (payload, sign_webhook(payload, secret, int(time.time()) - 301), secret)):
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(*args)
