"""Shared CLI plumbing: settings, logging, running a coroutine with a started Database."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress
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
    except OSError as exc:  # a file the command reads or writes (backup archive, --out, ...)
        raise fail(os_error(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None


def os_error(exc: OSError) -> str:
    """One line for a file error: "PATH: No such file or directory"."""
    what = exc.strerror or exc.__class__.__name__
    return f"{exc.filename}: {what}" if exc.filename else what


def usage(fn: Callable[..., T], *args: Any) -> T:
    """Run a parser of a command-line value; bad input is a one-line usage error (exit 2)."""
    try:
        return fn(*args)
    except SupportError as exc:
        raise fail(str(exc), 2) from None


def text_arg(value: str | None, option: str) -> str | None:
    """An option that takes text or `@FILE` (UTF-8): the text; a bad file is a one-line error (exit 2)."""
    if value is None or not value.startswith("@"):
        return value
    path = Path(value[1:])
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise fail(f"{option} {value}: {exc.strerror or 'cannot be read'}", 2) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = "\x00"
    if "\x00" in text:
        raise fail(f"{option} {value}: not a UTF-8 text file", 2)
    return text


def json_object_arg(value: str | None, option: str) -> dict[str, Any] | None:
    """An option that takes a JSON object or `@FILE.json`; bad input is a one-line error (exit 2)."""
    text = text_arg(value, option)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(f"{option}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})", 2) from None
    if not isinstance(data, dict):
        raise fail(f"{option}: must be a JSON object", 2)
    return data


def since_arg(value: str | None) -> Any:
    """`--since 1h | 7d | ISO date or time` as an aware datetime (exit 2 with one line if malformed)."""
    from ..reports import since_from

    return usage(since_from, value)


def progress_bar(*columns: Any, console: Console | None = None) -> Progress:
    """A transient progress bar for people, on stderr (stdout stays for results and pipes), shown
    only on a terminal. While it runs, log lines (also stderr) are printed above it, whole and
    unwrapped, instead of tearing through it."""
    console = console or Console(stderr=True, soft_wrap=True)
    return Progress(*columns, console=console, disable=not console.is_terminal, transient=True,
                    redirect_stderr=True, redirect_stdout=False)


def is_tty() -> bool:
    return sys.stderr.isatty()
