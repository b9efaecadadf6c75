"""Operator accounts of the web UI: local names with argon2id password hashes.

Stored in the node's database (table ``web_operators``).  A password is never stored or
logged; only its argon2id hash is.  Unknown names cost the same hash as known ones, so a
login form cannot be used to find out which operators exist.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from detente.errors import ConflictError, NotFoundError, ValidationError
from detente.partners.model import check_name
from detente.stix.timestamps import now_micros
from detente.store.engine import writer
from detente.web.schema import operators_t

__all__ = ["MIN_PASSWORD", "Operator", "OperatorBook"]

MIN_PASSWORD = 10



_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) defaults


@functools.cache
def _dummy() -> str:
    """The hash unknown operators are checked against (made on first use, not at import:
    every ``detente`` command imports this module)."""
    return _hasher.hash("detente: no such operator")


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    created_at: int


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValidationError(f"password must be at least {MIN_PASSWORD} characters")
    if password != password.strip():
        raise ValidationError("password must not start or end with whitespace")
    return password


class OperatorBook:
    """Create, list, remove and authenticate operator accounts."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def add(self, name: str, password: str) -> Operator:
        check_name(name, "operator name")
        created = now_micros()
        row = {"name": name, "password_hash": _hasher.hash(check_password(password)),
               "created_at": created}
        with writer(self.engine).begin() as conn:
            if conn.execute(sa.select(operators_t.c.name)
                            .where(operators_t.c.name == name)).first():
                raise ConflictError(f"operator {name} already exists",
                                    hint=f"remove it first: detente operator remove {name}")
            conn.execute(operators_t.insert().values(**row))
        return Operator(name, created)

    def all(self) -> list[Operator]:
        stmt = sa.select(operators_t.c.name, operators_t.c.created_at).order_by(operators_t.c.name)
        with self.engine.connect() as conn:
            return [Operator(r[0], int(r[1])) for r in conn.execute(stmt)]

    def remove(self, name: str) -> None:
        with writer(self.engine).begin() as conn:
            gone = conn.execute(operators_t.delete().where(operators_t.c.name == name)).rowcount
        if not gone:
            raise NotFoundError(f"no operator named {name!r}", hint="see 'detente operator list'")

    def exists(self, name: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(operators_t.c.name)
                                .where(operators_t.c.name == name)).first() is not None

    def verify(self, name: str, password: str) -> bool:
        """True only for a known operator with this password (constant work either way)."""
        dummy = _dummy()  # made on the first check, whichever way it goes
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(operators_t.c.password_hash)
                               .where(operators_t.c.name == name)).first()
        stored = row[0] if row is not None else dummy
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
        return row is not None
