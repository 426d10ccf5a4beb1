"""Evaluation episodes: ephemeral seeded tenants, their fixtures and their state export."""
