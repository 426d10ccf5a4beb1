"""Customer tools: create, get, find."""

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field

from support_mcp.desk import customers
from support_mcp.desk.models import Customer, CustomerList
from support_mcp.toolkit import TenantArg, scoped, tool

CustomerRef = Annotated[str, Field(description="Customer id (uuid) or email address.", min_length=1, max_length=320)]


def register(server: MCPServer) -> None:
    @tool(server, "write", title="Create customer")
    async def create_customer(
        tenant: TenantArg,
        name: Annotated[str, Field(description="Full name.", min_length=1, max_length=200)],
        ctx: Context,
        email: Annotated[str | None, Field(description="Email address (unique per tenant).", max_length=320)] = None,
        phone: Annotated[str | None, Field(description="Phone number.", max_length=40)] = None,
        stripe_customer_id: Annotated[str | None, Field(description="Stripe customer id cus_...",
                                                        pattern=r"^cus_[A-Za-z0-9]{1,64}$")] = None,
    ) -> Customer:
        """Create a customer record in the tenant's support desk."""
        async with scoped(ctx, tenant) as s:
            return await customers.create(s.conn, name, email, phone, stripe_customer_id)

    @tool(server, "read", title="Get customer")
    async def get_customer(tenant: TenantArg, customer: CustomerRef, ctx: Context) -> Customer:
        """Get one customer by id or email."""
        async with scoped(ctx, tenant) as s:
            return await customers.get(s.conn, customer)

    @tool(server, "read", title="Find customers")
    async def find_customers(
        tenant: TenantArg,
        ctx: Context,
        email: Annotated[str | None, Field(description="Exact email (case-insensitive).", max_length=320)] = None,
        name: Annotated[str | None, Field(description="Fragment of the name.", min_length=1, max_length=200)] = None,
        stripe_customer_id: Annotated[str | None, Field(description="Stripe customer id cus_...",
                                                        max_length=80)] = None,
        limit: Annotated[int, Field(description="Maximum results (1-100).", ge=1, le=100)] = 20,
    ) -> CustomerList:
        """Find customers by email, name fragment or Stripe customer id (newest first)."""
        async with scoped(ctx, tenant) as s:
            found = await customers.find(s.conn, email=email, name=name,
                                         stripe_customer_id=stripe_customer_id, limit=limit)
            return CustomerList(customers=found)
