"""Pseudonymous user ids: a keyed HMAC-SHA256 replaces each raw user id at ingest.

With ``settings.ingest.pseudonymize`` on, raw user ids never reach behaviour data: events,
users, edges (both ends) and quarantined rows carry ``hmac_sha256(secret, raw_id)`` as hex.
The one place that links a pseudonym back to a person is ``contacts.external_id``, which is
where a marketing channel needs it and where erasure deletes it. The same secret always gives
the same pseudonym, so repeated ingests and the API agree; rotating the secret starts a new,
unlinkable id space.
"""

from __future__ import annotations

import hashlib
import hmac

import pyarrow as pa
import pyarrow.compute as pc

from limelight.errors import ConfigError


class Pseudonymizer:
    """Maps raw user ids to keyed HMAC-SHA256 hex digests (64 characters).

    Parameters
    ----------
    secret
        The HMAC key. Keep it out of the store; losing it makes new ingests unlinkable to
        old pseudonyms.

    Example
    -------
    >>> p = Pseudonymizer("s3cret")
    >>> p("alice") == p("alice"), len(p("alice"))
    (True, 64)
    """

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ConfigError(
                "pseudonymization is on but no secret is set: set ingest.pseudonym_secret "
                "(LIMELIGHT_INGEST__PSEUDONYM_SECRET)"
            )
        self._key = secret.encode()
        self._cache: dict[str, str] = {}

    def __call__(self, user_id: str) -> str:
        """The pseudonym of one raw id."""
        out = self._cache.get(user_id)
        if out is None:
            out = hmac.new(self._key, user_id.encode(), hashlib.sha256).hexdigest()
            if len(self._cache) < 5_000_000:  # bounded: ids repeat heavily across chunks
                self._cache[user_id] = out
        return out

    def map_array(self, ids: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Table]:
        """Pseudonymize an array of (trimmed) ids; nulls and empty strings stay as they are.

        Returns the mapped array and a table ``(user_id, external_id)`` of the distinct pairs,
        for the contacts table.
        """
        text = pc.utf8_trim_whitespace(ids.cast(pa.string()))
        distinct = pc.unique(text).drop_null()
        distinct = distinct.filter(pc.not_equal(distinct, ""))
        raw = distinct.to_pylist()
        hashed = pa.array([self(x) for x in raw], pa.string())
        positions = pc.index_in(text, value_set=distinct)
        mapped = pc.take(hashed, positions)
        # keep empty strings so validation can name them missing
        mapped = pc.if_else(pc.equal(text, ""), text, mapped)
        pairs = pa.table({"user_id": hashed, "external_id": pa.array(raw, pa.string())})
        return mapped, pairs


def pseudonymizer_from_settings(settings: object | None = None) -> Pseudonymizer | None:
    """A :class:`Pseudonymizer` when ``ingest.pseudonymize`` is on, else None."""
    if settings is None:
        from limelight.settings import get_settings

        settings = get_settings()
    ingest = settings.ingest  # type: ignore[attr-defined]
    if not ingest.pseudonymize:
        return None
    return Pseudonymizer(ingest.pseudonym_secret)
