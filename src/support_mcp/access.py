"""Who may touch which tenant. Checked before any lookup, in one place.

A tenant the principal is not granted answers the same way whether it exists or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .db import validate_slug
from .errors import NotPermitted

SCOPES = ("read", "write", "refund", "admin", "episodes")
#: what tools, resources and prompts check; `episodes` is the admin API's (episodes/http.py): a key
#: holding it reaches the data of episode tenants only (sql/global/0010)
DATA_SCOPES = ("read", "write", "refund", "admin")
EPISODES_SCOPE = "episodes"


@dataclass(frozen=True)
class Principal:
    """The caller: a set of tenants (None = every tenant) and scopes."""

    name: str
    tenants: frozenset[str] | None
    scopes: frozenset[str] = field(default_factory=lambda: frozenset(DATA_SCOPES))
    key_id: str | None = None
    allow_confirm_argument: bool = False  # may confirm destructive tools with the `confirm` argument

    @classmethod
    def operator(cls, tenants: list[str] | None, all_tenants: bool) -> Principal:
        """From the --tenant / --all-tenants flags; refuses to be implicit."""
        if all_tenants and tenants:
            raise NotPermitted("give either --tenant (repeatable) or --all-tenants, not both")
        if all_tenants:
            return cls("operator:all-tenants", None)
        if not tenants:
            raise NotPermitted(
                "no tenant access configured: pass --tenant SLUG (repeatable) or --all-tenants"
            )
        return cls("operator", frozenset(validate_slug(t) for t in tenants))

    def grants(self, tenant: str) -> bool:
        return self.tenants is None or tenant in self.tenants


def authorize(principal: Principal, tenant: str, scope: str) -> None:
    """Raise unless `principal` may use `tenant` with `scope`. Runs before any SQL."""
    validate_slug(tenant)
    if not principal.grants(tenant):
        raise NotPermitted(f"tenant '{tenant}' is not available to this client")
    if scope not in principal.scopes:
        raise NotPermitted(f"this client lacks the '{scope}' scope")
