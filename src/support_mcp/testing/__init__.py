"""Test-only helpers shipped with the package: the structural checks of agent-facing markdown
(markdown_check). The Stripe double is a product feature now: support_mcp.stripe_sandbox."""
