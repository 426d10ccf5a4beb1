"""`episodes trigger`: an event made on the episode's sandbox account, signed, delivered through the
real webhook path, and processed by the episode's tenant as a real one would be."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support_mcp.cli import app
from support_mcp.episodes import service
from support_mcp.episodes.fixtures import parse_fixture
from support_mcp.errors import InvalidInput, NotConnected, NotFound
from support_mcp.payments.gateway import StripeGateway
from support_mcp.payments.webhooks import WebhookReceiver
from support_mcp.stripe_sandbox.listener import start_sandbox

EXAMPLE = Path(service.__file__).parent / "examples" / "acme_payments.json"


def fixture():  # noqa: ANN201
    data = json.loads(EXAMPLE.read_text("utf-8"))
    data["stripe"]["payment_intents"].append({"id": "pi_pending", "amount": 3000, "customer": "cus_beep",
                                              "status": "requires_confirmation"})
    return parse_fixture(data)


@pytest.fixture
async def receiver(db):
    gateway = StripeGateway(db.settings, db)
    listener = await start_sandbox(db, gateway)
    yield WebhookReceiver(db.settings, db, gateway)
    await gateway.close()
    await listener.stop()


async def test_dispute_created_is_recorded_by_the_tenant(db, kb, receiver, connect_key) -> None:
    ep = await service.create(db, kb, fixture())
    done = await service.trigger(db, receiver, ep["episode"], "charge.dispute.created", "ch_skates1",
                                 reason="fraudulent")
    assert done["status"] == 200 and done["response"]["outcome"].startswith("opened ticket #")
    state = (await service.state(db, ep["episode"]))["state"]
    dispute = next(d for d in state["stripe"]["disputes"] if d["charge"] == "ch_skates1")
    assert dispute["reason"] == "fraudulent" and dispute["status"] == "needs_response"
    assert next(c for c in state["stripe"]["charges"] if c["id"] == "ch_skates1")["disputed"]
    ticket = next(t for t in state["tickets"] if t["subject"].startswith("Dispute:"))
    assert ticket["customer"] == "wile@example.com"  # found by the Stripe customer the fixture linked
    assert ticket["priority"] == "urgent" and dispute["id"] in ticket["stripe_refs"]
    async with connect_key(ep["api_key"], stripe_sandbox=True) as c:
        listed = await c.ok("list_disputes", tenant=ep["tenant"], status="needs_response")
        looked = await c.ok("lookup_charge", tenant=ep["tenant"], id="ch_skates1")
    assert ticket["number"] in next(d for d in listed["disputes"] if d["id"] == dispute["id"])["tickets"]
    assert looked["disputed"] and looked["refundable_amount"] == 0
    again = await service.trigger(db, receiver, ep["episode"], "charge.refunded", "ch_skates2", amount=900)
    assert again["status"] == 200 and again["response"]["outcome"] == "no ticket references this charge"
    await service.destroy(db, ep["episode"], kb)


async def test_refunded_and_payment_failed(db, kb, receiver) -> None:
    ep = await service.create(db, kb, fixture())
    refunded = await service.trigger(db, receiver, ep["episode"], "charge.refunded", "ch_anvil")
    failed = await service.trigger(db, receiver, ep["episode"], "payment_intent.payment_failed", "pi_pending")
    assert refunded["status"] == failed["status"] == 200
    assert failed["response"]["outcome"].startswith("opened ticket #")
    state = (await service.state(db, ep["episode"]))["state"]
    anvil = next(c for c in state["stripe"]["charges"] if c["id"] == "ch_anvil")
    assert anvil["amount_refunded"] == 12000 and anvil["refunded"]
    ticket = next(t for t in state["tickets"] if t["subject"].startswith("Payment failed"))
    assert ticket["customer"] == "beep@example.com" and "pi_pending" in ticket["stripe_refs"]
    await service.destroy(db, ep["episode"], kb)


@pytest.mark.parametrize(("event", "obj", "error", "words"), [
    ("customer.created", "cus_wile", InvalidInput, ["unsupported event type", "charge.dispute.created"]),
    ("charge.dispute.created", None, InvalidInput, ["needs --object"]),
    ("charge.dispute.created", "ch_nosuch", NotFound, ["no object ch_nosuch"]),
    ("charge.dispute.created", "pi_anvil", InvalidInput, ["needs --object to be a charge", "payment intent"]),
    ("charge.dispute.created", "ch_seed", InvalidInput, ["already disputed"]),
    ("charge.dispute.created", "ch_declined", InvalidInput, ["status is failed"]),
    ("charge.refunded", "ch_skates1", InvalidInput, ["--amount must be between 1 and 4900"]),
    ("payment_intent.payment_failed", "pi_anvil", InvalidInput, ["cannot fail", "succeeded"]),
])
async def test_bad_triggers_are_one_line_errors_and_change_nothing(db, kb, receiver, event, obj, error,  # noqa: ANN001
                                                                   words) -> None:
    ep = await service.create(db, kb, fixture())
    before = await service.state(db, ep["episode"])
    with pytest.raises(error) as err:
        await service.trigger(db, receiver, ep["episode"], event, obj, amount=5000)
    msg = str(err.value)
    assert "\n" not in msg and all(w in msg for w in words), msg
    assert (await service.state(db, ep["episode"]))["state_hash"] == before["state_hash"]
    await service.destroy(db, ep["episode"], kb)


async def test_unknown_episode_no_sandbox_account_and_sandbox_off(db, kb, receiver) -> None:
    with pytest.raises(NotFound, match="no episode"):
        await service.trigger(db, receiver, str(uuid.uuid4()), "charge.dispute.created", "ch_skates1")
    plain = await service.create(db, kb, parse_fixture({"customers": [{"name": "A", "email": "a@example.com"}]}))
    with pytest.raises(NotFound, match="no Stripe sandbox account"):
        await service.trigger(db, receiver, plain["episode"], "charge.dispute.created", "ch_skates1")
    off = WebhookReceiver(db.settings, db, StripeGateway(db.settings, db))
    with pytest.raises(NotConnected, match="SUPPORT_MCP_STRIPE_SANDBOX=on"):
        await service.trigger(db, off, plain["episode"], "charge.dispute.created", "ch_skates1")
    await service.destroy(db, plain["episode"], kb)


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr




def test_trigger_via_cli(cli_env) -> None:
    code, out, err = _run("episodes", "create", "--fixture", str(EXAMPLE), "--json")
    assert code == 0, err
    ep = json.loads(out)
    code, out, err = _run("episodes", "trigger", ep["episode"], "charge.dispute.created", "--object", "ch_skates2",
                          "--json")
    assert code == 0, err
    done = json.loads(out)
    assert done["status"] == 200 and done["event"].startswith("evt_") and done["object"].startswith("dp_")
    code, out, _ = _run("episodes", "state", ep["episode"], "--json")
    state = json.loads(out)["state"]
    assert done["object"] in {d["id"] for d in state["stripe"]["disputes"]}
    for args, words in [(("charge.dispute.created", "--object", "ch_nosuch"), "no object ch_nosuch"),
                        (("charge.dispute.updated", "--object", "ch_skates1"), "unsupported event type"),
                        (("charge.dispute.created",), "needs --object")]:
        code, out, err = _run("episodes", "trigger", ep["episode"], *args)
        assert code == 1 and words in err and err.count("\n") == 1 and "Traceback" not in err + out, err
    code, out, err = _run("episodes", "trigger", str(uuid.uuid4()), "charge.refunded", "--object", "ch_anvil")
    assert code == 1 and "no episode" in err and err.count("\n") == 1
    code, _, _ = _run("episodes", "destroy", ep["episode"])
    assert code == 0
