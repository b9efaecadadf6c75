"""What we released to whom, and when: the part of the release records that echo
detection needs.

The release path owns its table; this module reads it only through
:func:`detente.release.iter_views_after`, indexing the views into
``trust_released_claims`` (partner, claim key, first release time) incrementally, by
release ``seq``, so checking a received claim against everything ever released to its
sender is one indexed lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import sqlalchemy as sa

from detente.release import iter_views_after
from detente.store.engine import writer
from detente.trust.claims import Resolver, claim_key, extract
from detente.trust.config import TrustConfig
from detente.trust.schema import released_claims, released_cursor

__all__ = ["index_releases", "released_value"]

_BATCH = 1000


def index_releases(engine: sa.Engine, resolver_for: Callable[[list[Any]], Resolver],
                   config: TrustConfig) -> int:
    """Index release records added since the last call; returns how many were read.

    Reads first, resolves references through ``resolver_for`` (the store) with no
    transaction open, then writes: on SQLite every transaction takes the write lock.
    """
    with engine.connect() as conn:
        cursor = conn.execute(sa.select(released_cursor.c.seq)).scalar()
    start = int(cursor) if cursor is not None else -1
    rows = list(iter_views_after(engine, start, _BATCH))
    if not rows:
        return 0
    views = [(partner, orjson.loads(view), seq) for partner, view, seq in rows]
    resolve = resolver_for([body for _, body, _ in views])
    best: dict[tuple[str, str], tuple[int, float]] = {}
    for partner, body, seq in views:
        found = extract(body, resolve, config) if isinstance(body, dict) else None
        for claim in found.claims if found else ():
            best.setdefault((partner, claim_key(claim)), (seq, found.importance if found else 1.0))
    with writer(engine).begin() as conn:
        _merge(conn, best)
        if cursor is None:
            conn.execute(released_cursor.insert().values(id=1, seq=rows[-1][2]))
        else:
            conn.execute(released_cursor.update().values(seq=rows[-1][2]))
    return len(rows)


def _merge(conn: sa.Connection, best: dict[tuple[str, str], tuple[int, float]]) -> None:
    if not best:
        return
    known = {(r[0], r[1]) for r in conn.execute(
        sa.select(released_claims.c.partner, released_claims.c.key).where(
            released_claims.c.key.in_({k for _, k in best})))}
    fresh = [{"partner": p, "key": k, "first_seq": s, "importance": w}
             for (p, k), (s, w) in best.items() if (p, k) not in known]
    if fresh:
        conn.execute(released_claims.insert(), fresh)


def released_value(conn: sa.Connection) -> dict[str, float]:
    """Per partner: the summed importance of the distinct claims we released to it."""
    rows = conn.execute(sa.select(released_claims.c.partner,
                                  sa.func.sum(released_claims.c.importance))
                        .group_by(released_claims.c.partner))
    return {str(p): float(v or 0.0) for p, v in rows}
