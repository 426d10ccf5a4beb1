"""The operator's day (issue 15), the CLI: one-line errors on every option that reads a file, a
date or a duration and on every refused command line; listings that match `show`; ids never cut;
tenants update, keys show and rotate; readable help and shell completion."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support_mcp.cli import app




def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args}: uncaught {result.exception!r}") from result.exception
    return result.exit_code, result.stdout, result.stderr


async def arun(*args: str) -> tuple[int, str, str]:
    """The CLI from an async test (it runs its own event loop: in a thread)."""
    return await asyncio.to_thread(run, *args)


def one_line_error(code: int, out: str, err: str, *needles: str, exit_code: int = 2) -> None:
    assert code == exit_code, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in out + err
    for needle in needles:
        assert needle in err, (needle, err)


def test_bad_policies_file_is_one_line(cli_env, unique_slug, tmp_path: Path) -> None:
    slug = unique_slug("pf")
    missing = tmp_path / "missing.txt"
    one_line_error(*run("tenants", "create", slug, "--name", "T", "--policies", f"@{missing}"),
                   "--policies", "No such file")
    binary = tmp_path / "binary"
    binary.write_bytes(bytes(range(256)))
    one_line_error(*run("tenants", "create", slug, "--name", "T", "--policies", f"@{binary}"), "not a UTF-8 text")
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"policy\x00text")
    one_line_error(*run("tenants", "create", slug, "--name", "T", "--policies", f"@{nul}"), "not a UTF-8 text")
    one_line_error(*run("tenants", "create", slug, "--name", "T", "--policies", f"@{tmp_path}"), "--policies")
    assert run("tenants", "show", slug)[0] == 1  # nothing was created


@pytest.mark.parametrize("since", ["yesterday", "2026-13-45", "7 days", "1y"])
@pytest.mark.parametrize("command", [["audit"], ["analytics"]])
def test_bad_since_is_one_line(cli_env, command: list[str], since: str) -> None:
    one_line_error(*run(*command, "--since", since), "--since", "duration")


@pytest.mark.parametrize("since", ["1h", "7d", "2026-11-30", "2026-11-30T08:00:00+01:00"])
def test_good_since_is_accepted(cli_env, since: str) -> None:
    code, out, err = run("audit", "--since", since, "--json")
    assert code == 0, err
    assert isinstance(json.loads(out), list)


def test_bad_durations_are_one_line(cli_env, tmp_path: Path) -> None:
    one_line_error(*run("keys", "create", "--name", "k", "--all-tenants", "--expires", "forever"), "30m")
    one_line_error(*run("episodes", "create", "--fixture", str(tmp_path / "f.json"), "--ttl", "soon"), "30m")


def test_tenants_list_json_matches_show(cli_env, unique_slug, tmp_path: Path) -> None:
    slug = unique_slug("lj")
    policies = tmp_path / "policies.md"
    policies.write_text("Refunds within 30 days.", "utf-8")
    assert run("tenants", "create", slug, "--name", "List Co", "--policies", f"@{policies}",
               "--webhook-secret", "whsec_list")[0] == 0
    listed = {t["slug"]: t for t in json.loads(run("tenants", "list", "--json")[1])}[slug]
    shown = json.loads(run("tenants", "show", slug)[1])
    assert listed == shown
    assert listed["policies"] == "Refunds within 30 days." and listed["has_webhook_secret"] is True
    assert listed["branding"] == {}


def test_docs_ingest_refuses_an_empty_folder(cli_env, tmp_path: Path) -> None:
    one_line_error(*run("docs", "ingest", str(tmp_path), "--tenant", "nobody"), "no files to ingest", ".md")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    one_line_error(*run("docs", "ingest", str(tmp_path), "--tenant", "nobody"), "1 unsupported file(s) skipped")


def test_docs_ingest_names_skipped_files(cli_env, tmp_path: Path) -> None:
    (tmp_path / "guide.md").write_text("# Guide\n\nText.", "utf-8")
    (tmp_path / "contract.docx").write_bytes(b"PK")
    code, out, err = run("docs", "ingest", str(tmp_path), "--tenant", "no_such_tenant_x")
    warning = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "contract.docx" in warning[0] and "guide.md" not in warning[0], err
    assert code == 1 and "no_such_tenant_x" in err and "Traceback" not in err  # then the unknown tenant


async def _create_key(db, tenants: list[str], name: str = "rot") -> tuple[str, str]:
    from support_mcp import keys

    created = await keys.create_key(db, name, tenants=tenants, all_tenants=False, scopes=["read", "write"],
                                    allow_confirm_argument=True)
    return str(created.id), created.key


async def test_keys_list_never_cuts_the_id(cli_env, db, make_tenant, monkeypatch) -> None:
    from io import StringIO

    from rich.console import Console

    from support_mcp import keys
    from support_mcp.cli.keys import keys_table

    a = await make_tenant("kl")
    key_id, _ = await _create_key(db, [a], name="a rather long key name for a narrow terminal")
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = await arun("keys", "list")  # not a terminal
    assert code == 0 and key_id in out
    line = next(line for line in out.splitlines() if line.startswith(key_id))
    assert line.split("\t")[2] == a
    screen = StringIO()  # a terminal 80 columns wide
    Console(file=screen, width=80, force_terminal=True, color_system=None).print(keys_table(await keys.list_keys(db)))
    assert key_id in screen.getvalue()
    code, out, _ = await arun("keys", "show", key_id)
    shown = json.loads(out)
    assert code == 0 and shown["id"] == key_id and shown["tenants"] == [a] and "key_hash" not in shown
    one_line_error(*await arun("keys", "show", "not-a-uuid"), "uuid", exit_code=1)


async def test_keys_rotate_keeps_grants_and_a_grace_period(cli_env, db, make_tenant) -> None:
    from support_mcp import keys
    from support_mcp.errors import NotPermitted

    a = await make_tenant("kr")
    key_id, old_key = await _create_key(db, [a])
    code, out, err = await arun("keys", "rotate", key_id)
    assert code == 0, err
    new_key = out.strip().splitlines()[-1]
    assert new_key.startswith("smk_") and new_key != old_key and "works until" in out
    verifier = keys.KeyVerifier(db, ttl=0)
    old, new = await verifier.principal(old_key), await verifier.principal(new_key)  # both work
    assert (new.tenants, new.scopes, new.allow_confirm_argument) == (old.tenants, old.scopes, True)
    assert new.key_id != old.key_id
    shown = json.loads((await arun("keys", "show", key_id))[1])
    assert shown["replaced_by"] == str(new.key_id) and shown["expires_at"] is not None
    one_line_error(*await arun("keys", "rotate", key_id), "already rotated", exit_code=1)
    one_line_error(*await arun("keys", "rotate", str(new.key_id), "--grace", "a while"), "30m")
    code, out, _ = await arun("keys", "rotate", str(new.key_id), "--grace", "0m")  # the old one ends now
    assert code == 0
    with pytest.raises(NotPermitted):
        await verifier.principal(new_key)
    await verifier.principal(out.strip().splitlines()[-1])


async def test_tenants_update(cli_env, db, make_tenant, tmp_path: Path) -> None:
    from support_mcp import tenancy

    a = await make_tenant("up", policies="old rules")
    brand = tmp_path / "brand.json"
    brand.write_text('{"color": "#00ff00"}', "utf-8")
    code, out, err = await arun("tenants", "update", a, "--branding", f"@{brand}", "--name", "Up Co")
    assert code == 0, err
    info = await tenancy.get_tenant(db, a)
    assert (info.name, info.branding, info.policies) == ("Up Co", {"color": "#00ff00"}, "old rules")
    assert (await arun("tenants", "update", a, "--policies", "new rules"))[0] == 0
    assert (await tenancy.get_tenant(db, a)).policies == "new rules"
    one_line_error(*await arun("tenants", "update", a), "--name")
    one_line_error(*await arun("tenants", "update", a, "--branding", "[1, 2]"), "JSON object")
    one_line_error(*await arun("tenants", "update", a, "--branding", "{nope"), "not valid JSON")
    one_line_error(*await arun("tenants", "update", a, "--branding", f"@{tmp_path / 'none.json'}"), "--branding")
    one_line_error(*await arun("tenants", "update", "no_such_x", "--name", "X"), "unknown tenant", exit_code=1)


def _command_paths() -> list[list[str]]:
    import typer.main

    paths: list[list[str]] = []

    def walk(command, path: list[str]) -> None:  # noqa: ANN001
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


def test_help_is_readable_everywhere(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    paths = _command_paths()
    assert ["keys", "rotate"] in paths and ["tenants", "update"] in paths and ["keys", "show"] in paths
    for path in paths:
        code, out, err = run(*path, "--help")
        assert code == 0, (path, err)
        for python_type in ("<str>", "<bool>", "<int", "<list[", "<Path>", "<float>"):
            assert python_type not in out, (path, python_type, out)
        if "Commands" in out:  # each summary whole: a sentence, not a line cut before its end
            listing = out[out.index("Commands"):]
            assert not any(line.rstrip(" │").endswith(":") for line in listing.splitlines()), (path, listing)
    assert "[default: read]" in run("keys", "create", "--help")[1]
    assert "SLUG" in run("tenants", "create", "--help")[1] and "PATH" in run("docs", "ingest", "--help")[1]
    assert "Run the MCP server." in run("--help")[1]


def test_shell_completion_is_available() -> None:
    """Completion answers through click's protocol (what the installed script calls), from a real
    process with no terminal: `--show-completion` alone guesses the shell from the parent process,
    which a test must not depend on."""
    script = Path(sys.executable).with_name("support-mcp")
    env = {**os.environ, "_SUPPORT_MCP_COMPLETE": "complete_bash", "COMP_WORDS": "support-mcp ten", "COMP_CWORD": "1"}
    done = subprocess.run([str(script)], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.split() == ["tenants"], (done.stdout, done.stderr)
    assert "--install-completion" in run("--help")[1] and "--show-completion" in run("--help")[1]


@pytest.mark.parametrize(("args", "needle"), [
    (["tenants", "create"], "Missing argument 'SLUG'"),
    (["tenants", "create", "x", "--name", "X", "--bogus"], "No such option: --bogus"),
    (["tenants", "restore", "/nonexistent/backup.tar"], "does not exist"),
    (["audit", "--limit", "0"], "--limit"),
    (["nosuch"], "No such command"),
])
def test_refused_command_lines_are_one_line(args: list[str], needle: str) -> None:
    one_line_error(*run(*args), needle, "--help")


async def test_an_episode_key_is_not_rotated(db, kb) -> None:
    from datetime import timedelta

    from support_mcp import keys
    from support_mcp.episodes import service
    from support_mcp.errors import InvalidInput

    acme = Path(service.__file__).parent / "examples" / "acme.json"
    ep = await service.create(db, kb, acme, timedelta(minutes=5))
    try:
        key_id = (await keys.KeyVerifier(db, ttl=0).principal(ep["api_key"])).key_id
        with pytest.raises(InvalidInput, match="episode"):
            await keys.rotate_key(db, str(key_id), timedelta(hours=1))
    finally:
        await service.destroy(db, ep["episode"], kb)
