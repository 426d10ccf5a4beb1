"""Stripe Connect: one wrapper (gateway), payment lookups and refunds (service), webhooks."""
