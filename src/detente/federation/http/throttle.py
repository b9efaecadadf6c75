"""Password attempts, counted per key (a client address, an operator name) in the database
(table ``auth_failures``), so that a flood of wrong passwords is refused *before* any
argon2 hash is computed, on every ``serve`` worker and process alike.

An attempt is counted *before* its hash: :meth:`FailureLimiter.reserve` takes one of the
key's :data:`MAX_FAILURES` attempts for the current :data:`WINDOW_S`-second window in one
atomic statement (an upsert whose condition is the budget), or refuses (429) without
hashing.  A failed check keeps its reservation; a successful one gives it back
(:meth:`FailureLimiter.release`), so a legitimate client behind a shared address is not
charged for its successes, and an attacker holding one valid credential cannot launder
guesses (a success only returns its own attempt).  Counting first is what bounds the work
of a flood: N concurrent attempts from one address run at most ``MAX_FAILURES`` hashes per
window, where checking the count and recording the failure after the hash let every
attempt in flight pass the check (74 argon2 runs in 25 s under 40 threads).

Rows are replaced per window, so the table holds at most one row per key.  Keys are
namespaced by the limiter's ``scope`` (``taxii``, ``web-user``, ``web-client``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from detente.errors import DetenteError
from detente.federation.schema import auth_failures
from detente.store.engine import writer

__all__ = ["MAX_FAILURES", "WINDOW_S", "FailureLimiter", "TooManyFailures"]

MAX_FAILURES = 10
WINDOW_S = 60


class TooManyFailures(DetenteError):
    """Too many failed password checks for this key: refused before hashing."""

    http_status = 429


class FailureLimiter:
    """At most ``max_failures`` password attempts per key per ``window_s`` seconds, not
    counting successes; shared by every process using the database."""

    def __init__(self, engine: sa.Engine, *, scope: str = "taxii",
                 max_failures: int = MAX_FAILURES, window_s: int = WINDOW_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine, self.scope = engine, scope
        self.max_failures, self.window_s, self._clock = max_failures, window_s, clock
        self._pg = engine.dialect.name == "postgresql"

    def _window(self) -> int:
        return int(self._clock()) // self.window_s

    def _key(self, key: str) -> str:
        return f"{self.scope}:{key}"

    def _refusal(self, key: str) -> TooManyFailures:
        return TooManyFailures(
            f"too many failed credentials from {key}; try again in {self.window_s} s",
            hint="check the user and password of this client")

    def check(self, key: str) -> None:
        """Refuse a key over its budget (one indexed read, no write, no hashing)."""
        t = auth_failures.c
        with self.engine.connect() as conn:
            count = conn.execute(sa.select(t.failures).where(
                t.address == self._key(key), t.window == self._window())).scalar()
        if count is not None and count >= self.max_failures:
            raise self._refusal(key)

    def reserve(self, key: str) -> int:
        """Count one attempt for ``key`` now, before its hash, or refuse it
        (:class:`TooManyFailures`) if the window's attempts are used up.  One atomic
        upsert: concurrent attempts on any number of processes cannot overrun the budget.
        Returns the window, for :meth:`release`."""
        window = self._window()
        t = auth_failures
        dialect = postgresql if self._pg else sqlite
        stmt = dialect.insert(t).values(address=self._key(key), window=window, failures=1)
        same = t.c.window == stmt.excluded.window
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.address],
            set_={"failures": sa.case((same, t.c.failures + 1), else_=1),
                  "window": stmt.excluded.window},
            where=sa.or_(~same, t.c.failures < self.max_failures),
        ).returning(t.c.failures)
        with writer(self.engine).begin() as conn:
            counted = conn.execute(stmt).first()
        if counted is None:
            raise self._refusal(key)
        return window

    def release(self, key: str, window: int) -> None:
        """Give back an attempt that succeeded (reserved in ``window``)."""
        t = auth_failures.c
        with writer(self.engine).begin() as conn:
            conn.execute(auth_failures.update().where(
                t.address == self._key(key), t.window == window, t.failures > 0)
                .values(failures=t.failures - 1))

    def failures(self, key: str) -> int:
        """Attempts counted against ``key`` in the current window (tests, the bench)."""
        t = auth_failures.c
        with self.engine.connect() as conn:
            count = conn.execute(sa.select(t.failures).where(
                t.address == self._key(key), t.window == self._window())).scalar()
        return int(count or 0)
