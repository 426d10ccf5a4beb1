"""Evaluation runs: fixtures (a tenant's known starting state) and, later, episodes."""
