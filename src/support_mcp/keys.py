"""API keys: `smk_<prefix>_<secret>`. Only a sha256 hash is stored; lookups go by the prefix and
compare hashes in constant time. A verified key becomes a Principal (tenants + scopes)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from .access import EPISODES_SCOPE, SCOPES, Principal
from .db import Database, queries, validate_slug
from .errors import InvalidInput, NotFound, NotPermitted
from .ttlcache import Cached

KEY_RE = re.compile(r"^smk_([a-f0-9]{8})_([A-Za-z0-9_-]{43})$")
_DURATION_RE = re.compile(r"^(\d{1,5})([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    m = _DURATION_RE.match(text.strip())
    if not m:
        raise InvalidInput(f"duration {text!r} must look like 30m, 12h, 30d or 8w")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True)
class CreatedKey:
    id: UUID
    name: str
    key: str  # plaintext: shown once, never stored


async def create_key(db: Database, name: str, *, tenants: list[str], all_tenants: bool, scopes: list[str],
                     expires_in: timedelta | None = None, allow_confirm_argument: bool = False) -> CreatedKey:
    async with db.admin_scope() as conn:
        return await insert_key(conn, name, tenants=tenants, all_tenants=all_tenants, scopes=scopes,
                                expires_in=expires_in, allow_confirm_argument=allow_confirm_argument)


async def insert_key(conn: Any, name: str, *, tenants: list[str], all_tenants: bool, scopes: list[str],
                     expires_in: timedelta | None = None, allow_confirm_argument: bool = False) -> CreatedKey:
    """create_key inside the caller's admin transaction (an episode's key is made with its episode)."""
    episodes_only = set(scopes) == {EPISODES_SCOPE}  # the admin API alone: no tenant to grant
    if all_tenants == bool(tenants) and not (episodes_only and not all_tenants):
        raise InvalidInput("give --tenant (repeatable) or --all-tenants")
    bad = sorted(set(scopes) - set(SCOPES))
    if not scopes or bad:
        raise InvalidInput(f"scopes must be among {', '.join(SCOPES)} (got {', '.join(bad) or 'none'})")
    prefix = secrets.token_hex(4)
    key = f"smk_{prefix}_{secrets.token_urlsafe(32)}"
    expires_at = datetime.now(timezone.utc) + expires_in if expires_in else None
    row = await queries.insert_api_key(conn, name=name, prefix=prefix, key_hash=_hash(key),
                                       all_tenants=all_tenants, scopes=sorted(set(scopes)),
                                       expires_at=expires_at, allow_confirm_argument=allow_confirm_argument)
    for slug in tenants:
        if await queries.grant_api_key_tenant(conn, key_id=row["id"], slug=validate_slug(slug)) is None:
            raise NotFound(f"unknown tenant '{slug}'")
    return CreatedKey(row["id"], name, key)


async def list_keys(db: Database) -> list[dict[str, Any]]:
    async with db.admin_scope() as conn:
        return [dict(r) async for r in queries.list_api_keys(conn)]


async def count_active(db: Database) -> int:
    """Keys neither revoked nor expired (as the admin: api_keys is the admin's)."""
    async with db.admin_scope() as conn:
        return await queries.count_active_api_keys(conn)


async def revoke_key(db: Database, key_id: str) -> None:
    try:
        uid = UUID(key_id)
    except ValueError:
        raise InvalidInput("key id must be the uuid shown by `keys list`") from None
    async with db.admin_scope() as conn:
        if await queries.revoke_api_key(conn, id=uid) is None:
            raise NotFound(f"no key with id {key_id}")


def _key_id(key_id: str) -> UUID:
    try:
        return UUID(key_id.strip())
    except ValueError:
        raise InvalidInput("key id must be the uuid shown by `keys list`") from None


async def get_key(db: Database, key_id: str) -> dict[str, Any]:
    """One key's record (never the key itself)."""
    async with db.admin_scope() as conn:
        row = await queries.get_api_key(conn, id=_key_id(key_id))
    if row is None:
        raise NotFound(f"no key with id {key_id}")
    return dict(row)


@dataclass(frozen=True)
class RotatedKey:
    new: CreatedKey
    old_id: UUID
    old_expires_at: datetime  # the old key works until then


async def rotate_key(db: Database, key_id: str, grace: timedelta) -> RotatedKey:
    """A new key with the old one's name, grants, scopes, confirm flag and expiry; the old key keeps
    working for `grace` (or until its own expiry, if sooner) and records its replacement."""
    uid = _key_id(key_id)
    async with db.admin_scope() as conn:
        old = await queries.lock_api_key(conn, id=uid)
        if old is None:
            raise NotFound(f"no key with id {key_id}")
        if old["revoked_at"] is not None:
            raise InvalidInput(f"key {uid} is revoked: create a new key instead")
        if old["replaced_by"] is not None:
            raise InvalidInput(f"key {uid} was already rotated; rotate its replacement {old['replaced_by']}")
        if await queries.is_episode_key(conn, id=uid):
            raise InvalidInput(f"key {uid} belongs to an evaluation episode and ends with it: create a new episode")
        now = datetime.now(timezone.utc)
        if old["expires_at"] is not None and old["expires_at"] <= now:
            raise InvalidInput(f"key {uid} has expired: create a new key instead")
        prefix = secrets.token_hex(4)
        key = f"smk_{prefix}_{secrets.token_urlsafe(32)}"
        row = await queries.insert_api_key(conn, name=old["name"], prefix=prefix, key_hash=_hash(key),
                                           all_tenants=old["all_tenants"], scopes=list(old["scopes"]),
                                           expires_at=old["expires_at"],
                                           allow_confirm_argument=old["allow_confirm_argument"])
        await queries.copy_api_key_grants(conn, from_id=uid, to_id=row["id"])
        retired = await queries.retire_api_key(conn, id=uid, expires_at=now + grace, replaced_by=row["id"])
    return RotatedKey(CreatedKey(row["id"], old["name"], key), uid, retired["expires_at"])


class KeyVerifier:
    """Key -> Principal, cached for `ttl` seconds (a revocation takes effect within it)."""

    def __init__(self, db: Database, ttl: float = 5.0) -> None:
        self.db = db
        # digest -> (principal or None, its expiry time or, for None, why it is refused)
        self._cache: Cached[bytes, tuple[Principal | None, float | str | None]] = Cached(ttl)
        self.used: set[UUID] = set()  # key ids seen since the last flush (for last_used_at)

    async def principal(self, key: str) -> Principal:
        """The key's principal, or NotPermitted for a forged, expired or revoked key."""
        m = KEY_RE.match(key or "")
        if not m:
            raise NotPermitted("invalid API key")
        digest = _hash(key)
        principal, expires = await self._cache.get(digest, lambda: self._load(m.group(1), digest))
        if principal is None:
            raise NotPermitted(expires if isinstance(expires, str) else "invalid, expired or revoked API key")
        if expires is not None and expires <= time.time():  # type: ignore[operator]
            raise NotPermitted("invalid, expired or revoked API key: this key expired (an episode's key expires "
                               "with its episode)")
        self.used.add(principal.key_id)  # type: ignore[arg-type]
        return principal

    async def _load(self, prefix: str, digest: bytes) -> tuple[Principal | None, float | str | None]:
        async with self.db.connection() as conn:
            row = await queries.get_api_key_by_prefix(conn, prefix=prefix)
        if row is None or not hmac.compare_digest(bytes(row["key_hash"]), digest):
            return None, ("invalid, expired or revoked API key: this key does not exist (any more: an episode's "
                          "key is deleted with its episode)")
        if row["revoked_at"]:
            return None, "invalid, expired or revoked API key: this key was revoked"
        expires = row["expires_at"].timestamp() if row["expires_at"] else None
        tenants = None if row["all_tenants"] else frozenset(row["tenants"])
        return Principal(f"key:{row['name']}", tenants, frozenset(row["scopes"]), key_id=row["id"],
                         allow_confirm_argument=row["allow_confirm_argument"]), expires

    def forget(self, *, name: str | None = None, scope: str | None = None) -> None:
        """Drop cached principals of the key named `name`, or of every key holding `scope`, so the
        next request reads them again (an episode destroyed or created on this server takes effect
        at once; other replicas within `ttl`)."""
        for digest, (principal, _) in self._cache.items():
            if principal is not None and ((name is not None and principal.name == name)
                                          or (scope is not None and scope in principal.scopes)):
                self._cache.forget(digest)

    async def flush_used(self) -> None:
        if self.used:
            ids, self.used = list(self.used), set()
            async with self.db.global_scope() as conn:
                await queries.touch_api_keys(conn, ids=ids)
