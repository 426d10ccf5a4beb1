"""Ids the sandbox mints: random like Stripe's, or seeded (the same calls mint the same ids)."""

from __future__ import annotations

import hashlib
import secrets
import string
from collections.abc import Callable

_ALNUM = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    """A Stripe-looking id: ``new_id("ch")`` -> ``ch_3Pq...`` (random base62)."""
    return f"{prefix}_" + "".join(secrets.choice(_ALNUM) for _ in range(length))


class SeededIds:
    """Deterministic ids: the n-th id minted is ``prefix_`` + base62(SHA-256(seed, n)), so two
    accounts with the same seed that receive the same calls mint the same ids. ``counter`` is
    how many were minted before (a restored account continues where it stopped)."""

    def __init__(self, seed: str, counter: int = 0) -> None:
        self.seed, self.counter = seed, counter

    def __call__(self, prefix: str, length: int) -> str:
        self.counter += 1
        out, block = "", 0
        while len(out) < length:
            digest = hashlib.sha256(f"{self.seed}\x1f{self.counter}\x1f{block}".encode()).digest()
            n = int.from_bytes(digest, "big")
            while n and len(out) < length:
                n, r = divmod(n, 62)
                out += _ALNUM[r]
            block += 1
        return f"{prefix}_{out}"


Minter = Callable[[str, int], str]
