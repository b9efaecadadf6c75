"""MISP-style correlation: other reports sharing one of an object's observables.

An observable claim (``obs|<sco type>|<path>|<value>``, see :mod:`detente.trust.claims`)
is what intake already extracted from an indicator's pattern or an SCO, normalised, so
``[ipv4-addr:value = '198.51.100.7/32']`` and an ``ipv4-addr`` SCO of ``198.51.100.7``
share a claim.  :func:`correlated` reads the trust tables only (the claims index), so it
costs one indexed query per object page, whatever the size of the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from detente.trust import schema as t
from detente.trust.claims import claim_key

__all__ = ["Correlation", "correlated", "observable_label"]

#: the most correlated reports returned for one object
LIMIT = 200


@dataclass(frozen=True, slots=True)
class Correlation:
    """Another report (``partner``'s assertion of ``object_id``) sharing ``claim``."""

    claim: str
    partner: str
    object_id: str
    type: str
    time: int
    echo: bool
    outcome: str | None

    @property
    def observable(self) -> str:
        return observable_label(self.claim)


def observable_label(claim: str) -> str:
    """``obs|ipv4-addr|value|198.51.100.7`` → ``ipv4-addr 198.51.100.7``."""
    parts = claim.split("|", 3)
    if len(parts) != 4 or parts[0] != "obs":
        return claim
    _, kind, path, value = parts
    return f"{kind} {value}" if path == "value" else f"{kind} {path} {value}"


def correlated(conn: sa.Connection, object_id: str, extra: Iterable[str] = (),
               limit: int = LIMIT) -> tuple[list[str], list[Correlation], bool]:
    """The observables of ``object_id`` (as asserted by anyone, plus ``extra`` claims),
    and every other assertion of one of them, oldest first; the flag says the list was
    cut at ``limit``.  The object's own assertions are left out."""
    a, c = t.assertions.c, t.claims.c
    own = {(key, claim) for key, claim in conn.execute(
        sa.select(c.key, c.claim).join(t.assertions, a.id == c.assertion_id)
        .where(a.object_id == object_id, c.claim.like("obs|%")))}
    own |= {(claim_key(x), x) for x in extra if x.startswith("obs|")}
    if not own:
        return [], [], False
    claims = dict(own)
    rows = conn.execute(
        sa.select(c.key, a.partner, a.object_id, a.type, a.time, a.echo, a.outcome)
        .join(t.assertions, a.id == c.assertion_id)
        .where(c.key.in_(sorted(claims)), a.object_id != object_id)
        .order_by(a.seq, a.id, c.key).limit(limit + 1)).all()
    out = [Correlation(claims[key], partner, oid, kind, int(time), bool(echo), outcome)
           for key, partner, oid, kind, time, echo, outcome in rows[:limit]]
    return sorted(claims.values()), out, len(rows) > limit
