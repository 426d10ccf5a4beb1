"""MCP tool modules, one per domain. Each exposes `register(server)`."""

from . import admin, customers, knowledge, system, tickets

MODULES = (system, customers, tickets, admin, knowledge)


def register_all(server) -> None:  # noqa: ANN001 - MCPServer
    for module in MODULES:
        module.register(server)
