"""Password attempts, counted per key (a client address, an operator name) in the database
(table ``auth_failures``), so that a flood of wrong passwords is refused *before* any
argon2 hash is computed, on every ``serve`` worker and process alike.

An attempt is counted *before* its hash: :meth:`FailureLimiter.reserve` takes one of the
key's :data:`MAX_FAILURES` attempts of its window — :data:`WINDOW_S` seconds from the
key's first attempt — in one atomic statement (an upsert whose condition is the budget),
or refuses (429) without hashing.  A failed check keeps its reservation; a successful one
gives it back (:meth:`FailureLimiter.release`), so a legitimate client behind a shared
address is not charged for its successes, and an attacker holding one valid credential
cannot launder guesses (a success only returns its own attempt).  Counting first is what
bounds the work of a flood: N concurrent attempts from one address run at most
``MAX_FAILURES`` hashes per window, where checking the count and recording the failure
after the hash let every attempt in flight pass the check (74 argon2 runs in 25 s under
40 threads).  The hashes themselves run in :data:`PASSWORD_CHECKS`, a small pool per
process at lower CPU priority.

A key's row is reset when its window has passed, so the table holds one row per key
(rows of keys sprayed once are purged).  Keys are namespaced by the limiter's ``scope``
(``taxii``, ``web-user``, ``web-client``).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from detente.errors import DetenteError
from detente.federation.schema import auth_failures
from detente.store.engine import writer

__all__ = ["MAX_FAILURES", "PASSWORD_CHECKS", "WINDOW_S", "FailureLimiter", "PasswordCheckBusy",
           "PasswordCheckTimeout", "PasswordChecks", "TooManyFailures"]

MAX_FAILURES = 10
WINDOW_S = 60

_PURGE_EVERY = 500
_P = ParamSpec("_P")
_T = TypeVar("_T")


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
        self._reserved = 0

    def _now(self) -> int:
        return int(self._clock())

    def _key(self, key: str) -> str:
        return f"{self.scope}:{key}"

    def _refusal(self, key: str) -> TooManyFailures:
        return TooManyFailures(
            f"too many failed credentials from {key}; try again in {self.window_s} s",
            hint="check the user and password of this client")

    def _counted(self, key: str) -> int:
        t = auth_failures.c
        with self.engine.connect() as conn:
            count = conn.execute(sa.select(t.failures).where(
                t.address == self._key(key), t.window > self._now() - self.window_s)).scalar()
        return int(count or 0)

    def check(self, key: str) -> None:
        """Refuse a key over its budget (one indexed read, no write, no hashing)."""
        if self._counted(key) >= self.max_failures:
            raise self._refusal(key)

    def reserve(self, key: str) -> int:
        """Count one attempt for ``key`` now, before its hash, or refuse it
        (:class:`TooManyFailures`) if its attempts are used up: at most ``max_failures``
        within ``window_s`` seconds of the first.  One atomic upsert: concurrent attempts
        on any number of processes cannot overrun the budget.  Returns the window's start,
        for :meth:`release`."""
        now = self._now()
        t = auth_failures
        dialect = postgresql if self._pg else sqlite
        stmt = dialect.insert(t).values(address=self._key(key), window=now, failures=1)
        live = t.c.window > now - self.window_s  # the key's window is still open
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.address],
            set_={"failures": sa.case((live, t.c.failures + 1), else_=1),
                  "window": sa.case((live, t.c.window), else_=now)},
            where=sa.or_(~live, t.c.failures < self.max_failures),
        ).returning(t.c.window)
        with writer(self.engine).begin() as conn:
            counted = conn.execute(stmt).scalar()
            self._reserved += 1
            if self._reserved % _PURGE_EVERY == 0:  # keys sprayed once do not pile up
                conn.execute(t.delete().where(t.c.window <= now - self.window_s))
        if counted is None:
            raise self._refusal(key)
        return int(counted)

    def release(self, key: str, window: int) -> None:
        """Give back an attempt that succeeded (reserved in the window starting ``window``)."""
        t = auth_failures.c
        with writer(self.engine).begin() as conn:
            conn.execute(auth_failures.update().where(
                t.address == self._key(key), t.window == window, t.failures > 0)
                .values(failures=t.failures - 1))

    def failures(self, key: str) -> int:
        """Attempts counted against ``key`` in its open window (tests, the bench)."""
        return self._counted(key)


class PasswordCheckBusy(TooManyFailures):
    """Refused before the check was queued: the attempt was not checked."""


class PasswordCheckTimeout(TooManyFailures):
    """The check waited too long and its answer is not used; it may have been hashed, so
    the attempt stays counted (timeouts cannot be turned into unlimited hashes)."""


class PasswordChecks:
    """Where this process's password hashes run (TAXII credentials and UI logins alike):
    at most ``size`` at once (argon2id takes ~64 MiB and several cores for ~50 ms each), on
    threads of lower CPU priority (``nice`` +10 on Linux, inherited by argon2's lane
    threads) so that requests needing no hash are not starved by those that do, and at
    most ``waiting`` queued — more is refused at once (429, :class:`PasswordCheckBusy`)
    rather than parked; a check not answered within ``wait_s`` is 429 too
    (:class:`PasswordCheckTimeout`), dropped if it had not started."""

    def __init__(self, size: int = 2, waiting: int = 16, nice: int = 10,
                 wait_s: float = 10.0) -> None:
        self.size, self.waiting, self.wait_s, self._nice = size, waiting, wait_s, nice
        self._pool: ThreadPoolExecutor | None = None
        self._queued = 0
        self._lock = threading.Lock()

    def _lower_priority(self) -> None:
        with contextlib.suppress(AttributeError, OSError):  # Linux: per thread
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._nice)

    def run(self, check: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        with self._lock:
            if self._queued >= self.size + self.waiting:
                raise PasswordCheckBusy("too many password checks at once; try again shortly")
            self._queued += 1
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.size, "detente-password",
                                                initializer=self._lower_priority)
            pool = self._pool
        future = pool.submit(check, *args, **kwargs)
        try:
            return future.result(timeout=self.wait_s)
        except FutureTimeout:
            future.cancel()  # still queued: never hashed (running: it finishes, unseen)
            raise PasswordCheckTimeout(
                "password checks are backed up; try again shortly") from None
        finally:
            with self._lock:
                self._queued -= 1


#: the process's password checks (one pool: its bound holds for every caller together)
PASSWORD_CHECKS = PasswordChecks()
