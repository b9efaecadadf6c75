"""The nonce cache of signed requests, persisted so a replay after a restart is refused.

A nonce is remembered per signer until its expiry (``created + 2 × window``): a request
older than the window is refused for its age, a younger one for its nonce.  Expired rows
are purged now and then.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from detente.federation.http.errors import NonceReplayError
from detente.federation.schema import seen_nonces
from detente.store.engine import writer

__all__ = ["NonceCache", "seen_nonces"]



_PURGE_EVERY = 1000


class NonceCache:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
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
