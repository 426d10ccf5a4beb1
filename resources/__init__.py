"""MCP resources and prompts. Each module exposes `register(server)`."""

from . import knowledge, listing, prompts, tenant

MODULES = (tenant, knowledge, prompts, listing)


def register_all(server) -> None:  # noqa: ANN001 - MCPServer
    for module in MODULES:
        module.register(server)
