"""The nonce cache of signed requests, persisted so a replay after a restart is refused.

A nonce is remembered per signer until its expiry (``created + 2 × window``): a request
older than the window is refused for its age, a younger one for its nonce.  Expired rows
are purged now and then.

Where the nonces live: on PostgreSQL in the home's database (``seen_nonces``), which every
``serve --workers N`` process shares — a request replayed to another worker is refused.
On SQLite (one server process: ``--workers`` > 1 is refused) in a database file of their
own beside the store's, ``nonces.db``: SQLite has one write lock per file, and a signed
request's nonce written to the store's file queued behind whatever write transaction held
it — the releaser's chunk commit, an ingest batch — for as long as it ran (p99 of a signed
page 45 ms against 11 ms for Basic, ``bench/hub.py --quick``).  Replay protection is the
same: the nonce is committed, under a primary key, before the request is served.  Nonces a
home recorded in the store before it had ``nonces.db`` are carried over when the cache is
opened, so a request signed before an upgrade cannot be replayed after it.
"""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from detente.federation.http.errors import NonceReplayError
from detente.federation.schema import seen_nonces
from detente.store.engine import make_engine, writer

__all__ = ["NONCE_FILE", "NonceCache", "seen_nonces"]

#: the nonces' own database file on a SQLite home, beside the store's file
NONCE_FILE = "nonces.db"

_PURGE_EVERY = 1000


def nonce_engine(store: sa.Engine) -> sa.Engine:
    """The engine the nonces of the home whose store is ``store`` are written with: the
    store's on PostgreSQL (shared by every worker) or for an in-memory SQLite store; the
    ``nonces.db`` file beside a SQLite store's file otherwise."""
    database = store.url.database if store.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return store
    engine = make_engine(f"sqlite:///{Path(database).resolve().with_name(NONCE_FILE)}")
    with writer(engine).begin() as conn:
        seen_nonces.create(conn, checkfirst=True)
    _carry_over(store, engine)
    return engine


def _carry_over(store: sa.Engine, engine: sa.Engine) -> None:
    """Move the unexpired nonces a home recorded in its store (before ``nonces.db``)."""
    now = int(time.time())
    t = seen_nonces.c
    with writer(store).begin() as old:
        if not sa.inspect(old).has_table(seen_nonces.name):
            return
        rows = [dict(r._mapping) for r in old.execute(
            sa.select(t.keyid, t.nonce, t.expires_at).where(t.expires_at >= now))]
        if rows:
            with writer(engine).begin() as new:
                new.execute(seen_nonces.insert().prefix_with("OR IGNORE"), rows)
        old.execute(seen_nonces.delete())


class NonceCache:
    def __init__(self, engine: sa.Engine) -> None:
        """``engine``: the home's store engine (see :func:`nonce_engine` for where the
        nonces are written)."""
        self.engine = nonce_engine(engine)
        self._count = 0

    def remember(self, keyid: str, nonce: str, expires_at: int) -> None:
        """Record a nonce; a nonce already recorded for this signer is a replay."""
        try:
            with writer(self.engine).begin() as conn:
                conn.execute(seen_nonces.insert().values(
                    keyid=keyid, nonce=nonce, expires_at=expires_at))
        except IntegrityError:
            raise NonceReplayError(
                f"replayed request: nonce already used by {keyid}",
                hint="sign every request afresh, with a new nonce") from None
        self._count += 1
        if self._count % _PURGE_EVERY == 0:
            self.purge()

    def purge(self, now: int | None = None) -> int:
        now = int(time.time()) if now is None else now
        with writer(self.engine).begin() as conn:
            n = conn.execute(seen_nonces.delete().where(seen_nonces.c.expires_at < now)).rowcount
        return int(n or 0)
