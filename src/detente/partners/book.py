"""The partner book: partners and client credentials, in the node's store database.

Client secrets are stored as argon2id hashes; the plain secret is returned once, at
creation.  The effective trust tier of a partner is read through :func:`effective_tier`,
the single place the earned-trust engine plugs into.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
from collections.abc import Callable

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from detente.errors import AuthError, ConflictError, NotFoundError, ValidationError
from detente.partners.model import Client, Partner, check_name, parse_public_key
from detente.stix.timestamps import now_micros
from detente.store.engine import read_unpinged, writer

__all__ = ["PartnerBook", "TierSource", "effective_tier"]

metadata = sa.MetaData()

partners_t = sa.Table(
    "partners", metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("identity_id", sa.Text),
    sa.Column("public_key", sa.LargeBinary, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("communities", sa.Text, nullable=False),
    sa.Column("base_tier", sa.Integer, nullable=False),
    sa.Column("max_tier", sa.Integer),
    sa.Column("min_tier", sa.Integer),
    sa.Column("cap_reason", sa.Text),
    sa.Column("added_at", sa.BigInteger, nullable=False),
)

clients_t = sa.Table(
    "taxii_clients", metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("partner", sa.Text),
    sa.Column("user", sa.Text, nullable=False, unique=True),
    sa.Column("secret_hash", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

_hasher = PasswordHasher()

#: computes a partner's earned tier from evidence (the earned-trust engine)
TierSource = Callable[[Partner], int]


def effective_tier(partner: Partner, earned: int | None = None) -> int:
    """The tier the release policy uses: earned (else operator) tier, within caps."""
    tier = earned if earned is not None else partner.base_tier
    if partner.max_tier is not None:
        tier = min(tier, partner.max_tier)
    if partner.min_tier is not None:
        tier = max(tier, partner.min_tier)
    return max(0, min(4, tier))


def _check_tier(tier: int) -> int:
    if tier not in range(5):
        raise ValidationError(f"tier must be 0-4, got {tier}")
    return tier


def _row_to_partner(r: sa.Row[tuple[object, ...]]) -> Partner:
    m = r._mapping
    return Partner(
        name=m["name"], identity_id=m["identity_id"], public_key=bytes(m["public_key"]),
        url=m["url"], communities=frozenset(c for c in m["communities"].split(",") if c),
        base_tier=m["base_tier"], max_tier=m["max_tier"], min_tier=m["min_tier"],
        cap_reason=m["cap_reason"], added_at=m["added_at"],
    )


class PartnerBook:
    def __init__(self, engine: sa.Engine, tier_source: TierSource | None = None) -> None:
        self.engine = engine
        #: the earned-trust engine plugs in here; None means operator-set tiers
        self.tier_source = tier_source

    def tier_of(self, partner: Partner) -> int:
        """The one function every caller reads a partner's tier through."""
        earned = self.tier_source(partner) if self.tier_source is not None else None
        return effective_tier(partner, earned)

    def create(self) -> None:
        metadata.create_all(writer(self.engine))

    # -- partners -------------------------------------------------------------
    def add(self, name: str, *, url: str, public_key: str, communities: frozenset[str] =
            frozenset(), tier: int = 1, identity_id: str | None = None) -> Partner:
        check_name(name)
        for c in communities:
            check_name(c, "community name")
        key = parse_public_key(public_key)
        if not url.startswith(("http://", "https://")):
            raise ValidationError(f"partner URL {url!r} must start with http:// or https://")
        row = {
            "name": name, "identity_id": identity_id, "public_key": key, "url": url.rstrip("/"),
            "communities": ",".join(sorted(communities)), "base_tier": _check_tier(tier),
            "max_tier": None, "min_tier": None, "cap_reason": None, "added_at": now_micros(),
        }
        with writer(self.engine).begin() as conn:
            if conn.execute(sa.select(partners_t.c.name).where(
                    partners_t.c.name == name)).first():
                raise ConflictError(f"partner {name} already exists",
                                    hint=f"remove it first: detente partner remove {name}")
            conn.execute(partners_t.insert().values(**row))
        return self.get(name)

    def get(self, name: str) -> Partner:
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(partners_t).where(partners_t.c.name == name)).first()
        if r is None:
            raise NotFoundError(f"no partner named {name!r}",
                                hint="see 'detente partner list'")
        return _row_to_partner(r)

    def all(self) -> list[Partner]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(partners_t).order_by(partners_t.c.name)).all()
        return [_row_to_partner(r) for r in rows]

    def remove(self, name: str) -> None:
        with writer(self.engine).begin() as conn:
            n = conn.execute(partners_t.delete().where(partners_t.c.name == name)).rowcount
            conn.execute(clients_t.delete().where(clients_t.c.partner == name))
        if not n:
            raise NotFoundError(f"no partner named {name!r}")

    def update(self, name: str, **values: object) -> Partner:
        allowed = {"url", "public_key", "communities", "base_tier", "max_tier", "min_tier",
                   "cap_reason", "identity_id"}
        bad = set(values) - allowed
        if bad:
            raise ValidationError(f"cannot update partner field(s) {', '.join(sorted(bad))}")
        communities = values.get("communities")
        if isinstance(communities, frozenset | set):
            values["communities"] = ",".join(sorted(str(c) for c in communities))
        with writer(self.engine).begin() as conn:
            n = conn.execute(
                partners_t.update().where(partners_t.c.name == name).values(**values)
            ).rowcount
        if not n:
            raise NotFoundError(f"no partner named {name!r}")
        return self.get(name)

    # -- clients ------------------------------------------------------------------
    def add_client(self, name: str, partner: str | None) -> tuple[Client, str]:
        """Create a credential; returns the client and its secret (shown only once)."""
        check_name(name, "client name")
        if partner is not None:
            self.get(partner)
        user = name
        secret = secrets.token_urlsafe(24)
        client = Client(name, partner, user, _hasher.hash(secret), now_micros())
        with writer(self.engine).begin() as conn:
            if conn.execute(sa.select(clients_t.c.name).where(
                    clients_t.c.name == name)).first():
                raise ConflictError(f"client {name} already exists")
            conn.execute(clients_t.insert().values(
                name=client.name, partner=client.partner, user=client.user,
                secret_hash=client.secret_hash, created_at=client.created_at))
        return client, secret

    def clients(self) -> list[Client]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(clients_t).order_by(clients_t.c.name)).all()
        return [Client(**r._mapping) for r in rows]

    def remove_client(self, name: str) -> None:
        with writer(self.engine).begin() as conn:
            if not conn.execute(clients_t.delete().where(clients_t.c.name == name)).rowcount:
                raise NotFoundError(f"no client named {name!r}")

    def client_of_user(self, user: str) -> Client | None:
        """The credential row of ``user`` as stored now (no hashing), or None."""
        # asked on every TAXII request: one statement, so on PostgreSQL no ping at
        # checkout (a dropped connection is retried on a fresh one) and no BEGIN/ROLLBACK
        stmt = sa.select(clients_t).where(clients_t.c.user == user)
        r = read_unpinged(self.engine, lambda conn: conn.execute(stmt).first(),
                          autocommit=True)
        return None if r is None else Client(**r._mapping)

    def authenticate_client(self, user: str, secret: str) -> Client:
        """Check a Basic/bearer credential; fails closed with one message for every cause."""
        dummy = _dummy_hash()  # made on the first check, whichever way it goes
        client = self.client_of_user(user)
        failure = AuthError("unknown client or wrong secret")
        if client is None:
            # spend the same time as a real check, so user names cannot be probed
            with contextlib.suppress(VerificationError, InvalidHashError):
                _hasher.verify(dummy, secret)
            raise failure
        try:
            _hasher.verify(client.secret_hash, secret)
        except (VerificationError, InvalidHashError):
            raise failure from None
        return client


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown users (made once, when first needed: an
    argon2 hash at import cost every ``detente`` command ~0.1-0.5 s)."""
    return _hasher.hash("not-a-real-secret")
