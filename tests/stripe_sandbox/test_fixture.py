"""The fixture's `stripe` section: shapes, references and amounts, each problem as `path: problem`."""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path

import pytest

from support_mcp.episodes import service
from support_mcp.episodes.fixtures import parse_fixture
from support_mcp.errors import InvalidInput
from support_mcp.stripe_sandbox.fixture import populate
from support_mcp.stripe_sandbox.ids import SeededIds
from support_mcp.stripe_sandbox.objects import Account

EXAMPLE = Path(service.__file__).parent / "examples" / "acme_payments.json"
DATA = json.loads(EXAMPLE.read_text("utf-8"))


def _bad(mutate) -> dict:  # noqa: ANN001
    data = copy.deepcopy(DATA)
    mutate(data)
    return data


def _s(d: dict) -> dict:
    return d["stripe"]


BAD = [
    ("charge names a missing customer", lambda d: _s(d)["charges"][0].update(customer="cus_nobody"),
     ["stripe.charges[0].customer: no customer 'cus_nobody' in stripe.customers"]),
    ("charge names a missing payment intent", lambda d: _s(d)["charges"][0].update(payment_intent="pi_nope"),
     ["stripe.charges[0].payment_intent: no payment intent 'pi_nope' in stripe.payment_intents"]),
    ("refund over the charge amount", lambda d: _s(d)["refunds"].append({"charge": "ch_magnet", "amount": 6000}),
     ["stripe.refunds[1].amount: 6000 is more than the 5000 still refundable on charge ch_magnet (amount 7500)"]),
    ("refund of a fully refunded charge", lambda d: _s(d)["refunds"].extend(
        [{"charge": "ch_seed"}, {"charge": "ch_seed", "amount": 1}]),
     ["stripe.refunds[2]: charge ch_seed is already fully refunded by earlier refunds"]),
    ("refund of a failed charge", lambda d: _s(d)["refunds"].append({"charge": "ch_declined"}),
     ["stripe.refunds[1].charge: charge ch_declined has status 'failed'"]),
    ("refund of a missing charge", lambda d: _s(d)["refunds"].append({"charge": "ch_gone"}),
     ["stripe.refunds[1].charge: no charge 'ch_gone' in stripe.charges"]),
    ("unknown field on a charge", lambda d: _s(d)["charges"][0].update(amount_refunded=100),
     ["stripe.charges[0].amount_refunded: unknown field"]),
    ("unknown kind", lambda d: _s(d).update(invoices=[]), ["stripe.invoices: unknown field"]),
    ("id of another kind", lambda d: _s(d)["charges"][0].update(id="pi_skates"),
     ["stripe.charges[0].id: string should match pattern"]),
    ("id the tools refuse", lambda d: _s(d)["charges"][0].update(id="ch_my_skates"),
     ["stripe.charges[0].id: string should match pattern"]),
    ("duplicate id", lambda d: _s(d)["charges"][1].update(id="ch_skates1"),
     ["stripe.charges[1].id: duplicate of stripe.charges[0].id"]),
    ("amount as text", lambda d: _s(d)["charges"][0].update(amount="4900"),
     ["stripe.charges[0].amount: input should be a valid integer"]),
    ("zero amount", lambda d: _s(d)["charges"][0].update(amount=0),
     ["stripe.charges[0].amount: input should be greater than 0"]),
    ("upper-case currency", lambda d: _s(d)["charges"][0].update(currency="USD"),
     ["stripe.charges[0].currency: string should match pattern"]),
    ("bad charge status", lambda d: _s(d)["charges"][0].update(status="refunded"),
     ["stripe.charges[0].status: input should be"]),
    ("charge differs from its payment intent", lambda d: _s(d)["charges"][2].update(amount=100),
     ["stripe.charges[2].amount: 100 differs from its payment intent's 12000"]),
    ("dispute of a missing charge", lambda d: _s(d)["disputes"][0].update(charge="ch_gone"),
     ["stripe.disputes[0].charge: no charge 'ch_gone' in stripe.charges"]),
    ("two disputes on one charge", lambda d: _s(d)["disputes"].append({"id": "dp_again", "charge": "ch_seed"}),
     ["stripe.disputes[1].charge: charge ch_seed already has a dispute (stripe.disputes[0])"]),
    ("dispute of a failed charge", lambda d: _s(d)["disputes"][0].update(charge="ch_declined"),
     ["stripe.disputes[0].charge: charge ch_declined has status 'failed'"]),
    ("dispute over the amount", lambda d: _s(d)["disputes"][0].update(amount=1501),
     ["stripe.disputes[0].amount: 1501 is more than the charge's amount 1500"]),
    ("bad dispute reason", lambda d: _s(d)["disputes"][0].update(reason="angry"),
     ["stripe.disputes[0].reason: input should be"]),
    ("desk customer links a missing Stripe customer", lambda d: d["customers"][0].update(stripe_customer_id="cus_x"),
     ["customers[0].stripe_customer_id: no customer 'cus_x' in stripe.customers"]),
    ("two desk customers link one Stripe customer", lambda d: d["customers"][1].update(stripe_customer_id="cus_wile"),
     ["customers[1].stripe_customer_id: duplicate of customers[0].stripe_customer_id"]),
    ("everything at once", lambda d: (_s(d)["charges"][0].update(customer="cus_nobody", colour="red"),
                                      _s(d)["refunds"][0].update(amount=99999)),
     ["stripe.charges[0].colour: unknown field", "stripe.charges[0].customer: no customer",
      "stripe.refunds[0].amount: 99999 is more than the 7500"]),
]


@pytest.mark.parametrize(("mutate", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_stripe_section_gives_one_line_naming_the_path(mutate, expected) -> None:  # noqa: ANN001
    with pytest.raises(InvalidInput) as err:
        parse_fixture(_bad(mutate))
    msg = str(err.value)
    assert msg.startswith("fixture invalid: ") and "\n" not in msg
    for part in expected:
        assert part in msg, msg


def test_the_example_populates_an_account_like_stripe_would() -> None:
    acct = Account("acct_test", threading.RLock(), mint=SeededIds("s"), clock=lambda: 1_768_478_400)
    populate(acct, parse_fixture(DATA).stripe)
    magnet, anvil, seed = acct.get("ch_magnet"), acct.get("ch_anvil"), acct.get("ch_seed")
    assert (magnet["amount_refunded"], magnet["refunded"]) == (2500, False)
    assert acct.get("re_magnet")["charge"] == "ch_magnet"
    assert acct.get("pi_anvil")["latest_charge"] == "ch_anvil" and anvil["payment_intent"] == "pi_anvil"
    assert seed["disputed"] and acct.get("dp_seed")["reason"] == "product_not_received"
    assert acct.get("ch_declined")["failure_code"] == "card_declined"
    assert len(acct.objects("charge")) == 6  # the succeeded payment intent seeded no charge of its own
    assert {o["created"] for _, o in acct.all_objects()} == {1_768_478_400}


def test_seeded_ids_repeat_and_differ_by_seed() -> None:
    a, b, c = SeededIds("7"), SeededIds("7"), SeededIds("8")
    first = [a("re", 24) for _ in range(3)]
    assert first == [b("re", 24) for _ in range(3)] and len(set(first)) == 3
    assert c("re", 24) != first[0]
    assert all(i.startswith("re_") and len(i) == 27 and i[3:].isalnum() for i in first)
    assert len(SeededIds("7")("CAcQARoX", 60)) == len("CAcQARoX_") + 60  # longer than one digest
    restored = SeededIds("7", counter=2)
    assert restored("re", 24) == first[2]
