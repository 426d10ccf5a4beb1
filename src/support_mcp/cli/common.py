"""Shared CLI plumbing: settings, logging, running a coroutine with a started Database."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from pydantic import ValidationError

from .. import migrations
from ..db import Database
from ..errors import SupportError
from ..logging import configure_logging
from ..settings import Settings

T = TypeVar("T")


# Settings given as global command-line options (`--data-dir`, `--database-url`,
# `--database-admin-url`): set by the root callback on every invocation; they beat the environment.
OVERRIDES: dict[str, object] = {}


def settings() -> Settings:
    try:
        s = Settings(**OVERRIDES)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        raise fail(f"invalid setting {where}: {err['msg']}", 2) from None
    configure_logging(s.log_level, s.log_format)
    return s


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def run_with_db(fn: Callable[[Database], Awaitable[T]], s: Settings | None = None) -> T:
    """Start the database, run fn, close; SupportErrors become a one-line message and exit 1."""
    s = s or settings()

    async def runner() -> T:
        db = migrations.database(s)
        try:
            await db.start()
            return await fn(db)
        finally:
            await db.close()

    try:
        return asyncio.run(runner())
    except SupportError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None


def is_tty() -> bool:
    return sys.stderr.isatty()
