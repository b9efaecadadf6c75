"""Failed password checks, counted per client address in the database (table
``auth_failures``), so that a flood of wrong passwords is refused *before* any argon2 hash
is computed, on every ``serve`` worker alike.

An address that failed :data:`MAX_FAILURES` times within :data:`WINDOW_S` seconds is
refused (429) until the window passes; a success does not reset the count (an attacker
holding one valid credential cannot launder guesses).  Rows are replaced per window, so
the table holds at most one row per address.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from detente.errors import DetenteError
from detente.federation.schema import auth_failures
from detente.store.engine import writer

__all__ = ["MAX_FAILURES", "WINDOW_S", "FailureLimiter", "TooManyFailures"]

MAX_FAILURES = 10
WINDOW_S = 60


class TooManyFailures(DetenteError):
    """Too many failed password checks from this address: refused before hashing."""

    http_status = 429


class FailureLimiter:
    def __init__(self, engine: sa.Engine, *, max_failures: int = MAX_FAILURES,
                 window_s: int = WINDOW_S) -> None:
        self.engine, self.max_failures, self.window_s = engine, max_failures, window_s

    def _window(self) -> int:
        return int(time.time()) // self.window_s

    def check(self, address: str) -> None:
        """Refuse an address over its failure budget (one indexed read, no hashing)."""
        t = auth_failures.c
        with self.engine.connect() as conn:
            count = conn.execute(sa.select(t.failures).where(
                t.address == address, t.window == self._window())).scalar()
        if count is not None and count >= self.max_failures:
            raise TooManyFailures(
                f"too many failed credentials from {address}; try again in "
                f"{self.window_s} s", hint="check the user and password of this client")

    def failed(self, address: str) -> None:
        t = auth_failures.c
        window = self._window()
        with writer(self.engine).begin() as conn:
            n = conn.execute(auth_failures.update().where(
                t.address == address, t.window == window).values(
                failures=t.failures + 1)).rowcount
            if not n:
                conn.execute(auth_failures.delete().where(t.address == address))
                conn.execute(auth_failures.insert().values(address=address, window=window,
                                                           failures=1))
