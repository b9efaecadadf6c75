"""Work claims of the releaser: which process catches which partner up.

Several releasers may run on one node: every ``detente serve`` worker runs one, and
``detente release`` may run beside them.  Correctness never depends on a claim — each
chunk's commit compares-and-sets the partner's cursor (:meth:`Releaser.catch_up_from`), so
a range is released once whoever runs it — but without claims every releaser would
evaluate the same chunks and all but one would throw their work away.

On PostgreSQL a claim is a session-level advisory lock per partner
(``pg_try_advisory_lock(class, hash(partner))``), held by the database on the run's own
connection: it is never waited for (a claimed partner is skipped by the others), it is
given back after each chunk so releasers take turns, and it dies with its connection, so
a releaser killed mid-chunk leaves no stale claim.  Two partners whose names hash alike
share a lock (less parallelism, never a wrong result).  On SQLite a node has one server
process (``serve --workers`` > 1 is refused) and every claim is granted; the cursor's
compare-and-set still keeps a concurrent ``detente release`` exact.
"""

from __future__ import annotations

import zlib

import sqlalchemy as sa

__all__ = ["CLAIM_CLASS", "Claims"]

#: the first key of the releaser's advisory locks ("rcla"); the store's own lock uses the
#: one-key form, so the two never collide
CLAIM_CLASS = 0x72636C61


def _partner_key(partner: str) -> int:
    """A signed 32-bit key for the partner's name."""
    value = zlib.crc32(partner.encode())
    return value - (1 << 32) if value >= 1 << 31 else value


class Claims:
    """The partners one run has claimed; :meth:`close` gives every claim back."""

    def __init__(self, engine: sa.Engine) -> None:
        self._conn: sa.Connection | None = None
        if engine.dialect.name == "postgresql":
            # autocommit: the locks belong to the session, no transaction stays open
            self._conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.held: set[str] = set()

    def take(self, partner: str) -> bool:
        """Claim ``partner`` (never waits); False when another releaser holds it."""
        if partner in self.held:
            return True
        if self._conn is not None:
            got = self._conn.execute(sa.text("SELECT pg_try_advisory_lock(:c, :k)"),
                                     {"c": CLAIM_CLASS, "k": _partner_key(partner)}).scalar()
            if not got:
                return False
        self.held.add(partner)
        return True

    def give_back(self, partner: str) -> None:
        """End the claim on ``partner`` (another releaser may take its next chunk)."""
        if partner not in self.held:
            return
        self.held.discard(partner)
        if self._conn is not None:
            self._conn.execute(sa.text("SELECT pg_advisory_unlock(:c, :k)"),
                               {"c": CLAIM_CLASS, "k": _partner_key(partner)})

    def close(self) -> None:
        if self._conn is not None:
            try:  # the connection is this run's alone: every lock on it is a claim
                self._conn.execute(sa.text("SELECT pg_advisory_unlock_all()"))
            except sa.exc.DBAPIError:
                self._conn.invalidate()  # never back to the pool still holding a claim
            finally:
                self._conn.close()
                self._conn = None
        self.held.clear()

    def __enter__(self) -> Claims:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
