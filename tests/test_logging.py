"""Logging goes to stderr only, as JSON or console lines, with PII masked everywhere."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from support_mcp.logging import (
    NOISY_LOGGERS,
    bind_context,
    configure_logging,
    get_logger,
    mask_pii,
    mask_pii_processor,
)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Each test may reconfigure logging; put the session's configuration back afterwards."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, lvl in levels.items():
        logging.getLogger(name).setLevel(lvl)


def _json_lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.strip()]


# --- mask_pii: what is masked -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # emails
        ("contact jane.doe+x@example.co.uk now", "contact [email] now"),
        ("bob@example.com", "[email]"),
        ("mailto:ops_team@sub.example.io.", "mailto:[email]."),
        # cards: Luhn-valid, 13-19 digits, optional single space/dash separators
        ("card 4242 4242 4242 4242 exp 12/27", "card [card] exp 12/27"),
        ("4111-1111-1111-1111", "[card]"),
        ("pan=4242424242424242;", "pan=[card];"),
        ("amex 378282246310005", "amex [card]"),
        ("disc 6011111111111117 mc 5555-5555-5555-4444", "disc [card] mc [card]"),
        ("qty 2 4242 4242 4242 4242", "qty 2 [card]"),
        ("4242 4242 4242 4242 4111 1111 1111 1111", "[card] [card]"),
        # phones
        ("call +44 20 7946 0958 today", "call [phone] today"),
        ("+1-555-123-4567", "[phone]"),
        ("+1 (555) 123-4567", "[phone]"),
        ("+33 6 12 34 56 78", "[phone]"),
        ("+441234567890", "[phone]"),
        ("(555) 123-4567", "[phone]"),
        ("555.123.4567", "[phone]"),
        ("tel: 555-123-4567.", "tel: [phone]."),
        ("1-555-123-4567", "[phone]"),
        # Stripe secrets
        ("key sk_live_51HxYzAbC123", "key [secret]"),
        ("sk_test_abc123def456", "[secret]"),
        ("rk_live_abc123 rk_test_xyz789", "[secret] [secret]"),
        ("whsec_AbCdEf0123456789", "[secret]"),
        # bearer tokens and JWTs
        ("Authorization: Bearer abc.DEF-123_x~+/==", "Authorization: Bearer [token]"),
        ("authorization: bearer xyz789", "authorization: bearer [token]"),
        ("Bearer abcdefghijklmnopqrstuvwxyz", "Bearer [token]"),  # long enough to be a credential
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-_x", "jwt [token]"),
        # URLs with credentials
        (
            "postgresql://app:s3cr3t@db.example.com:5432/support",
            "postgresql://app:[secret]@db.example.com:5432/support",
        ),
        ("postgres://u:p@localhost/db", "postgres://u:[secret]@localhost/db"),
        ("redis://:hunter2@cache:6379/0", "redis://:[secret]@cache:6379/0"),
    ],
)
def test_mask_pii_masks(text: str, expected: str) -> None:
    assert mask_pii(text) == expected


# --- mask_pii: what is deliberately left alone ------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "4242424242424241",  # fails Luhn
        "4111 1111 1111 1112",  # fails Luhn
        "order 1234567890123",  # 13 digits, fails Luhn
        "ts 1732287600000",  # epoch millis: cards start with 2-6
        "id 12345678901234567890123",  # longer than any card
        "123e4567-e89b-12d3-a456-426614174000",
        "abcdef12-1234-5678-9012-345678901234",  # UUID whose digit groups look card-like
        "2026-11-22",
        "2026-11-22T15:00:00Z",
        "2026-11-22T15:00:00.123456+00:00",
        "took 12.5 ms",
        "version 2.3.0",
        "connect 127.0.0.1:5432",
        "ticket #1042 has 3 replies",
        "42",
        "retry in +5 s",
        "pk_live_abc123 pk_test_abc123",  # publishable keys are not secret
        "sk_other_abc",
        "postgresql://app@localhost/db",  # no password
        "user@localhost",  # no TLD: not an email
        "bearer",
        '"principal": "bearer API keys + OAuth"',  # the server's startup line: prose, not a token
        "send a bearer token.",
        "",
    ],
)
def test_mask_pii_leaves_alone(text: str) -> None:
    assert mask_pii(text) == text


def test_mask_pii_is_idempotent() -> None:
    text = "jane@example.com paid with 4242 4242 4242 4242, call +1-555-123-4567, sk_test_abc"
    once = mask_pii(text)
    assert once == "[email] paid with [card], call [phone], [secret]"
    assert mask_pii(once) == once


# --- mask_pii_processor ----------------------------------------------------------------


def test_processor_masks_nested_structures() -> None:
    event = {
        "event": "refund for jane@example.com",
        "timestamp": "2026-11-22T15:00:00.123456Z",
        "customer": {"email": "bob@example.com", "phones": ["+44 20 7946 0958", "#1042"]},
        "cards": ("4242 4242 4242 4242", 7),
        "deep": [{"x": [{"note": "sk_live_abc123"}]}],
        "count": 3,
        "missing": None,
    }
    out = mask_pii_processor(None, "info", event)
    assert out == {
        "event": "refund for [email]",
        "timestamp": "2026-11-22T15:00:00.123456Z",
        "customer": {"email": "[email]", "phones": ["[phone]", "#1042"]},
        "cards": ("[card]", 7),
        "deep": [{"x": [{"note": "[secret]"}]}],
        "count": 3,
        "missing": None,
    }


@pytest.mark.parametrize(
    "key",
    [
        "authorization",
        "Authorization",
        "api_key",
        "x-api-key",
        "apikey",
        "password",
        "db_password",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "webhook_secret",
        "stripe_secret_key",
        "database_url",
    ],
)
def test_processor_masks_sensitive_keys(key: str) -> None:
    out = mask_pii_processor(None, "info", {"event": "x", key: "plain-value", "nested": {key: 1}})
    assert out[key] == "[secret]"
    assert out["nested"][key] == "[secret]"


@pytest.mark.parametrize("key", ["token_count", "max_tokens", "tenant", "secretary", "keyword"])
def test_processor_keeps_innocent_keys(key: str) -> None:
    out = mask_pii_processor(None, "info", {"event": "x", key: "plain-value"})
    assert out[key] == "plain-value"


# --- configure_logging: output -----------------------------------------------------------


def test_structlog_goes_to_stderr_only_and_masked(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    get_logger().info("refund for jane@example.com", card="4242 4242 4242 4242", key="sk_test_abc123def456")
    out, err = capfd.readouterr()
    assert out == ""
    for leaked in ("jane@example.com", "4242", "sk_test_abc123def456"):
        assert leaked not in err
    [line] = _json_lines(err)
    assert line["event"] == "refund for [email]"
    assert line["card"] == "[card]"
    assert line["key"] == "[secret]"
    assert line["level"] == "info"
    assert line["timestamp"].endswith("Z")


def test_context_is_merged(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    bind_context(tenant="acme", request_id="r1", requester="jane@example.com")
    get_logger("support_mcp.tools").info("ticket created", ticket=1042)
    structlog.contextvars.clear_contextvars()
    get_logger().info("after clear")
    first, second = _json_lines(capfd.readouterr().err)
    assert first["tenant"] == "acme"
    assert first["request_id"] == "r1"
    assert first["requester"] == "[email]"
    assert first["logger"] == "support_mcp.tools"
    assert first["ticket"] == 1042
    assert "tenant" not in second


def test_stdlib_logging_is_routed_and_masked(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    bind_context(tenant="acme")
    logging.getLogger("asyncpg").warning("user %s", "bob@example.com")
    out, err = capfd.readouterr()
    assert out == ""
    [line] = _json_lines(err)
    assert line["event"] == "user [email]"
    assert line["logger"] == "asyncpg"
    assert line["level"] == "warning"
    assert line["tenant"] == "acme"


def test_exception_tracebacks_are_masked(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    try:
        raise ValueError("duplicate key jane@example.com")
    except ValueError:
        get_logger().exception("insert failed")
        logging.getLogger("asyncpg").exception("pool error")
    err = capfd.readouterr().err
    assert "jane@example.com" not in err
    lines = _json_lines(err)
    assert len(lines) == 2
    assert all("ValueError: duplicate key [email]" in line["exception"] for line in lines)


def test_configure_twice_does_not_duplicate(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    configure_logging("INFO", "json")
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_support_mcp", False)]
    assert len(ours) == 1
    get_logger().info("once")
    logging.getLogger("mcp").warning("once too")
    assert len(_json_lines(capfd.readouterr().err)) == 2


def test_level_filtering_and_noisy_loggers(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("WARNING", "json")
    log = get_logger()
    log.info("hidden")
    log.warning("shown")
    logging.getLogger("asyncpg").info("hidden too")
    assert [line["event"] for line in _json_lines(capfd.readouterr().err)] == ["shown"]

    configure_logging("DEBUG", "json")
    for name in NOISY_LOGGERS:
        assert logging.getLogger(name).level == logging.WARNING
    logging.getLogger("httpx").info("GET https://api.stripe.com")
    get_logger().debug("debug shown")
    assert [line["event"] for line in _json_lines(capfd.readouterr().err)] == ["debug shown"]


def test_console_format(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "console")
    get_logger().info("login", email="jane@example.com")
    out, err = capfd.readouterr()
    assert out == ""
    assert "login" in err and "[email]" in err
    assert "jane@example.com" not in err
    with pytest.raises(json.JSONDecodeError):
        json.loads(err)


def test_auto_format_is_json_when_stderr_is_not_a_tty(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging()
    get_logger().info("hello")
    assert _json_lines(capfd.readouterr().err)[0]["event"] == "hello"


@pytest.mark.parametrize(("level", "fmt"), [("LOUD", "json"), ("INFO", "xml")])
def test_configure_rejects_bad_arguments(level: str, fmt: str) -> None:
    with pytest.raises(ValueError):
        configure_logging(level, fmt)
