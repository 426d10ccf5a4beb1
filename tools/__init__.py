"""MCP tool modules, one per domain. Each exposes `register(server)`."""

from . import admin, customers, knowledge, payments, system, tickets

MODULES = (system, customers, tickets, admin, knowledge, payments)


def register_all(server) -> None:  # noqa: ANN001 - MCPServer
    for module in MODULES:
        module.register(server)
