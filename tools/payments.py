"""Stripe Connect tools: charge lookups, disputes and refunds on the tenant's connected account."""

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import Elicit, Resolve
from pydantic import Field

from support_mcp.confirm import Approval, NotAsked, Outcome, ask, confirmation
from support_mcp.guard import current_principal
from support_mcp.payments import refunds, service
from support_mcp.payments.models import ChargeInfo, ChargeList, DisputeList, DisputeStatus, RefundReason, RefundResult, money
from support_mcp.toolkit import TenantArg, app_of, stripe_for, tool

from .admin import CONFIRM_HELP

PaymentRef = Annotated[str, Field(description="A charge id (ch_...) or a PaymentIntent id (pi_...; its latest charge).",
                                  min_length=4, max_length=80)]
Limit = Annotated[int, Field(description="Page size (1-100).", ge=1, le=100)]


async def confirm_refund(ctx: Context, tenant: str, charge: str, amount: int | None, confirm: str | None,
                         dry_run: bool) -> NotAsked | Elicit[Approval]:
    """The dialog names the exact amount and charge (looked up through the Stripe scoping point)."""
    async def question() -> str:
        ch = await service.resolve_charge(await stripe_for(ctx, tenant), charge)
        value = amount if amount is not None else service.refundable(ch)
        return (f"Refund {money(value, ch['currency'])} of charge {ch['id']} (paid "
                f"{money(ch['amount'], ch['currency'])}) for '{tenant}'? This cannot be undone.")

    return await ask(ctx, tenant, dry_run=dry_run, confirm=confirm, question=question)


def register(server: MCPServer) -> None:
    @tool(server, "read", title="Look up a charge", open_world=True)
    async def lookup_charge(tenant: TenantArg, id: PaymentRef, ctx: Context) -> ChargeInfo:
        """Look up a payment on the tenant's Stripe account: amount, status, refunds, dispute,
        receipt, the linked customer and the tickets that mention it."""
        stripe = await stripe_for(ctx, tenant)
        return await service.lookup_charge(stripe, app_of(ctx).db, id)

    @tool(server, "read", title="List a customer's charges", open_world=True)
    async def list_charges(
        tenant: TenantArg,
        customer: Annotated[str, Field(description="The tenant's customer (id or email; needs a linked Stripe "
                                       "customer) or a Stripe customer id cus_...", min_length=1, max_length=320)],
        ctx: Context,
        limit: Limit = 10,
        cursor: Annotated[str | None, Field(description="next_cursor of the previous page.", max_length=80)] = None,
    ) -> ChargeList:
        """List a customer's charges on the tenant's Stripe account, newest first."""
        stripe = await stripe_for(ctx, tenant)
        return await service.list_charges(stripe, app_of(ctx).db, customer, limit=limit, cursor=cursor)

    @tool(server, "read", title="List disputes", open_world=True)
    async def list_disputes(
        tenant: TenantArg,
        ctx: Context,
        status: Annotated[DisputeStatus | None, Field(description="Only disputes in this status, e.g. "
                                                      "needs_response.")] = None,
        limit: Limit = 10,
        cursor: Annotated[str | None, Field(description="next_cursor of the previous page.", max_length=80)] = None,
    ) -> DisputeList:
        """List the tenant's Stripe disputes (chargebacks), newest first, with the tickets about them."""
        stripe = await stripe_for(ctx, tenant)
        return await service.list_disputes(stripe, app_of(ctx).db, status=status, limit=limit, cursor=cursor)

    @tool(server, "destructive", title="Refund a charge", scope="refund", idempotent=True, open_world=True)
    async def create_refund(
        tenant: TenantArg,
        charge: PaymentRef,
        reason: Annotated[RefundReason, Field(description="Why: requested_by_customer, duplicate or fraudulent.")],
        ctx: Context,
        approval: Annotated[Outcome, Resolve(confirm_refund)],
        amount: Annotated[int | None, Field(description="Amount in the currency's smallest unit (2500 = 25.00 USD), "
                                            "as lookup_charge shows it. Omit for everything still refundable.",
                                            gt=0, le=99_999_999_999)] = None,
        ticket: Annotated[str | None, Field(description="Ticket to note the refund on: id or number (#1042).",
                                            min_length=1, max_length=64)] = None,
        request_id: Annotated[str | None, Field(
            description="Your id for this refund request. Repeating a call with the same charge, amount, reason "
            "and request_id never refunds twice; use a new request_id to refund the same amount again on purpose.",
            min_length=1, max_length=100)] = None,
        confirm: Annotated[str | None, Field(description=CONFIRM_HELP.format(what="the charge id"),
                                             max_length=80)] = None,
        dry_run: Annotated[bool, Field(description="Only check the refund and show what it would do.")] = False,
    ) -> RefundResult:
        """Refund a charge on the tenant's Stripe account (needs the refund scope and a confirmation).
        Never confirm on the user's behalf: ask them first, or use dry_run to preview."""
        stripe = await stripe_for(ctx, tenant)
        return await refunds.create_refund(
            stripe, app_of(ctx).db, charge=charge, amount=amount, reason=reason, ticket=ticket, request_id=request_id,
            approval=confirmation(ctx, approval, confirm), dry_run=dry_run, requested_by=current_principal().name)
