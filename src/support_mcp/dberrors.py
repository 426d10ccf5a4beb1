"""Map asyncpg's per-SQLSTATE exceptions to the SupportError hierarchy.

Messages never carry SQL text, constraint internals or values of another tenant.
"""

from __future__ import annotations

import asyncio

import asyncpg

from .errors import (
    Conflict,
    InvalidInput,
    NotFound,
    NotPermitted,
    SupportError,
    TenantUnavailable,
    UpstreamUnavailable,
)

# Raised by public.support_mcp_enter_tenant (sql/global/0001).
UNKNOWN_TENANT = "SM404"
SUSPENDED_TENANT = "SM423"

#: The server is gone, going, not yet up, or the connection broke: all transient.
CONNECTION_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,  # class 08
    asyncpg.InterfaceError,  # includes "connection is closed", ConnectionDoesNotExistError
    # "cannot switch to state 15; another operation (2) is in progress": the server's FATAL
    # (57P01, a terminated backend) arrived on an idle or pooled connection before its socket
    # closed. (Two coroutines sharing one connection raise InterfaceError "another operation
    # is in progress" instead; that is not this.)
    asyncpg.InternalClientError,
    asyncpg.CannotConnectNowError,  # 57P03: starting up / shutting down
    asyncpg.AdminShutdownError,  # 57P01: the server is stopping (fast/immediate shutdown)
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.TooManyConnectionsError,  # 53300
)
UNAVAILABLE = "the database is unavailable; retry in a few seconds"


def translate(exc: BaseException, *, tenant: str | None = None) -> SupportError | None:
    """Return the SupportError for a database exception, or None if it is not one."""
    if isinstance(exc, SupportError):
        return exc
    state = getattr(exc, "sqlstate", None)
    if state == UNKNOWN_TENANT:
        return NotFound(f"unknown tenant '{tenant}'")
    if state == SUSPENDED_TENANT:
        return TenantUnavailable(f"tenant '{tenant}' is suspended; ask an operator to resume it")
    if isinstance(exc, asyncpg.UniqueViolationError):
        return Conflict("that record already exists (a unique value is taken)")
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return NotFound("a referenced record does not exist")
    if isinstance(exc, asyncpg.CheckViolationError | asyncpg.NotNullViolationError):
        return InvalidInput(f"a value is out of range or missing ({_constraint(exc)})")
    if isinstance(exc, asyncpg.DataError):
        return InvalidInput("a value has the wrong format or is too long")
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return NotPermitted("permission denied")
    if isinstance(exc, asyncpg.QueryCanceledError):
        return UpstreamUnavailable("the database took too long to answer; try again")
    if isinstance(exc, asyncpg.LockNotAvailableError | asyncpg.DeadlockDetectedError):
        return UpstreamUnavailable("the record is busy; try again")
    if isinstance(exc, asyncpg.SerializationError):
        return UpstreamUnavailable("a concurrent change conflicted; try again")
    if isinstance(exc, CONNECTION_ERRORS):
        return UpstreamUnavailable(UNAVAILABLE)
    return None


def _constraint(exc: BaseException) -> str:
    # Constraint names are ours (e.g. tickets_subject_check): safe and actionable.
    name = getattr(exc, "constraint_name", None) or getattr(exc, "column_name", None)
    return str(name) if name else "constraint"
