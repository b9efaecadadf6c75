"""Operator sessions and CSRF tokens (login attempts are counted in the database by
:class:`detente.federation.http.throttle.FailureLimiter`, shared by every worker).

A session is a row in ``web_sessions`` keyed by the SHA-256 of a random id; the cookie
carries that id with an HMAC-SHA256 under the node secret ``web-session.key``, so a forged
or altered cookie is refused before the database is asked.  Logging out or removing the
operator deletes the row: a copied cookie dies with it.  Each session has its own CSRF
token, required on every POST; the login form (no session yet) uses a token bound to a
short-lived pre-login cookie instead.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from detente.errors import AuthError
from detente.store.engine import writer
from detente.web.schema import sessions_t

__all__ = ["Session", "SessionBook", "TooManyAttempts"]

SESSION_TTL = 8 * 3600
LOGIN_NONCE_TTL = 1800



class TooManyAttempts(AuthError):
    """Too many failed logins in the last minute."""

    http_status = 429


@dataclass(frozen=True, slots=True)
class Session:
    operator: str
    csrf: str
    expires_at: float


def _hash_id(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class SessionBook:
    """Signed session cookies backed by server-side rows (revocable)."""

    def __init__(self, engine: sa.Engine, key: bytes, *, ttl: float = SESSION_TTL,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self._key = key
        self.ttl = ttl
        self._clock = clock

    def _sign(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()

    def _unsign(self, cookie: str) -> str | None:
        value, _, mac = cookie.rpartition(".")
        if not value or not hmac.compare_digest(mac, self._sign(value)):
            return None
        return value

    def open(self, operator: str) -> tuple[str, Session]:
        """A new session for ``operator``: (cookie value, session)."""
        sid = secrets.token_urlsafe(32)
        session = Session(operator, secrets.token_urlsafe(32), self._clock() + self.ttl)
        with writer(self.engine).begin() as conn:
            conn.execute(sessions_t.delete().where(sessions_t.c.expires_at < self._clock()))
            conn.execute(sessions_t.insert().values(
                id_hash=_hash_id(sid), operator=operator, csrf=session.csrf,
                expires_at=session.expires_at))
        return f"{sid}.{self._sign(sid)}", session

    def lookup(self, cookie: str | None) -> Session | None:
        """The live session a cookie names, or None (forged, expired, logged out)."""
        sid = self._unsign(cookie) if cookie else None
        if sid is None:
            return None
        stmt = sa.select(sessions_t).where(sessions_t.c.id_hash == _hash_id(sid))
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        if row is None or row.expires_at < self._clock():
            return None
        return Session(row.operator, row.csrf, row.expires_at)

    def close(self, cookie: str | None) -> None:
        sid = self._unsign(cookie) if cookie else None
        if sid is not None:
            with writer(self.engine).begin() as conn:
                conn.execute(sessions_t.delete().where(sessions_t.c.id_hash == _hash_id(sid)))

    def close_all(self, operator: str) -> int:
        with writer(self.engine).begin() as conn:
            return conn.execute(
                sessions_t.delete().where(sessions_t.c.operator == operator)).rowcount

    # -- the login form's CSRF token (no session yet) ---------------------------------
    def login_nonce(self) -> str:
        """A pre-login cookie value: random nonce and its issue time, signed."""
        value = f"{secrets.token_urlsafe(16)}:{int(self._clock())}"
        return f"{value}.{self._sign(value)}"

    def login_token(self, nonce_cookie: str | None) -> str | None:
        """The CSRF token the login form must echo for this pre-login cookie."""
        value = self._unsign(nonce_cookie) if nonce_cookie else None
        if value is None:
            return None
        issued = value.rpartition(":")[2]
        if not issued.isdigit() or int(issued) + LOGIN_NONCE_TTL < self._clock():
            return None
        return self._sign("login|" + value)


def tokens_match(given: object, expected: str | None) -> bool:
    """Constant-time comparison of a submitted CSRF token with the expected one."""
    if not isinstance(given, str) or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
