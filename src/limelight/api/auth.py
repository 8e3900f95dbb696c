"""API keys with scopes.

Keys are never stored: ``settings.serve.api_keys`` maps the SHA-256 hex digest of a key to its
scopes (``read``, ``write``, ``admin``; ``admin`` grants every scope). Clients send the key in
the ``X-API-Key`` header. A missing or unknown key is answered 401, a key without the needed
scope 403. With no keys configured, auth is off (local development). ``/health`` is always open.

Example
-------
>>> digest = hash_key("s3cret")
>>> keys = ApiKeys({digest: ["read"]})
>>> keys.check("s3cret", "read") is None
True
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

HEADER = "X-API-Key"
SCOPES = ("read", "write", "admin")


def hash_key(key: str) -> str:
    """SHA-256 hex digest of an API key (what settings store)."""
    return hashlib.sha256(key.encode()).hexdigest()


class AuthError(Exception):
    """A request without the right key; ``status`` is 401 or 403."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ApiKeys:
    """Checks keys against hashed digests.

    Parameters
    ----------
    digests
        SHA-256 hex digest -> list of scopes.
    """

    def __init__(self, digests: Mapping[str, Sequence[str]]) -> None:
        unknown = {s for scopes in digests.values() for s in scopes} - set(SCOPES)
        if unknown:
            from limelight.errors import ConfigError

            raise ConfigError(f"unknown API key scope(s) {sorted(unknown)} in serve.api_keys; "
                              f"use {', '.join(SCOPES)}")
        self._digests = {d.lower(): frozenset(s) for d, s in digests.items()}
        # per-process cache: hashing is cheap but the hot path should not repeat it
        self._cache: dict[str, frozenset[str] | None] = {}

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def scopes_of(self, key: str) -> frozenset[str] | None:
        """Scopes of ``key``, None when unknown."""
        if key in self._cache:
            return self._cache[key]
        digest = hash_key(key)
        found = None
        for known, scopes in self._digests.items():
            if hmac.compare_digest(known, digest):
                found = scopes
        if len(self._cache) < 10_000:
            self._cache[key] = found
        return found

    def check(self, key: str | None, scope: str) -> None:
        """Raise :class:`AuthError` unless ``key`` grants ``scope`` (no-op when auth is off)."""
        if not self.enabled:
            return
        if not key:
            raise AuthError(401, f"missing API key: send it in the {HEADER} header")
        scopes = self.scopes_of(key)
        if scopes is None:
            raise AuthError(401, "unknown API key")
        if scope not in scopes and "admin" not in scopes:
            raise AuthError(403, f"this API key lacks the {scope!r} scope")
