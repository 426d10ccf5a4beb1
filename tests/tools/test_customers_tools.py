"""Customer tools through the real MCP client."""

from __future__ import annotations


async def test_customer_tools(connect, make_tenant) -> None:
    a = await make_tenant("cu")
    async with connect([a]) as c:
        ann = await c.ok("create_customer", tenant=a, name="Ann Lee", email="ann@x.test", phone="+1 555 0100",
                         stripe_customer_id="cus_ABC123")
        await c.ok("create_customer", tenant=a, name="Annabel Q", email="bel@x.test")
        await c.ok("create_customer", tenant=a, name="Bob 100%_real")
        assert "already exists" in await c.err("create_customer", tenant=a, name="Dup", email="ANN@x.test")
        assert (await c.ok("get_customer", tenant=a, customer=ann["id"]))["name"] == "Ann Lee"
        assert (await c.ok("get_customer", tenant=a, customer="Ann@X.test"))["id"] == ann["id"]
        assert "not found" in await c.err("get_customer", tenant=a, customer="nobody@x.test")
        assert "customer must be" in await c.err("get_customer", tenant=a, customer="bob")

        async def names(**f: object) -> list[str]:
            return sorted(x["name"] for x in (await c.ok("find_customers", tenant=a, **f))["customers"])

        assert await names(name="ann") == ["Ann Lee", "Annabel Q"]
        assert await names(email="BEL@x.test") == ["Annabel Q"]
        assert await names(stripe_customer_id="cus_ABC123") == ["Ann Lee"]
        assert await names(name="100%_") == ["Bob 100%_real"]
        assert await names(name="%") == ["Bob 100%_real"]  # LIKE wildcards are literal
        assert await names(name="ann", limit=1) in (["Ann Lee"], ["Annabel Q"])
        assert "at least one of" in await c.err("find_customers", tenant=a)
        assert "stripe_customer_id:" in await c.err("create_customer", tenant=a, name="X",
                                                    stripe_customer_id="acct_123")
        assert "not a valid address" in await c.err("create_customer", tenant=a, name="X", email="nope")
