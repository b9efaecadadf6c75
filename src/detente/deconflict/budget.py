"""Per-partner query budgets, so that a partner cannot probe a node's set by enumeration.

Three limits (all must hold, checked before any group operation on the partner's query):

* ``items_per_query`` — a query may not carry more items than this;
* ``queries_per_day`` — sessions per partner per UTC day;
* ``max_set_ratio`` — a query may not be larger than ``ratio × |responder set|`` (a huge
  query against a small set is how one enumerates the set).

Charging a query also claims its session id, so a replayed query is refused even after a
restart. :class:`SqlBudgetBook` keeps both in tables prefixed ``deconflict_`` (SQLite or
PostgreSQL); :class:`MemoryBudgetBook` is the same contract in memory, for pure tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from detente.deconflict.errors import BudgetExceeded, ReplayError
from detente.store.engine import writer

__all__ = ["Budget", "BudgetBook", "Budgets", "MemoryBudgetBook", "SqlBudgetBook", "Usage"]


@dataclass(frozen=True)
class Budget:
    items_per_query: int = 1 << 16
    queries_per_day: int = 24
    max_set_ratio: float = 4.0

    def check_query(self, items: int, responder_size: int) -> None:
        """(1) The stateless limits; raises :class:`BudgetExceeded` naming the one broken."""
        if items > self.items_per_query:
            raise BudgetExceeded(
                f"query of {items} items exceeds the {self.items_per_query} allowed per query",
                reason="items_per_query",
            )
        if items > self.max_set_ratio * max(1, responder_size):
            raise BudgetExceeded(
                f"query of {items} items is more than {self.max_set_ratio}× our set",
                reason="max_set_ratio",
            )


@dataclass(frozen=True)
class Budgets:
    """The budget each partner gets: a default plus explicit overrides."""

    default: Budget = field(default_factory=Budget)
    per_partner: Mapping[str, Budget] = field(default_factory=dict)

    def for_partner(self, partner: str) -> Budget:
        return self.per_partner.get(partner, self.default)


@dataclass(frozen=True)
class Usage:
    queries: int
    items: int


class BudgetBook(Protocol):
    """Persistent per-partner, per-day counters and the set of session ids already seen."""

    def charge(
        self, *, partner: str, session_id: str, day: date, items: int, budget: Budget
    ) -> None:
        """Claim the session id and count one query, atomically, or raise and change nothing.

        Raises :class:`ReplayError` for a session id seen before and
        :class:`BudgetExceeded` when the day's queries are used up.
        """
        ...

    def usage(self, partner: str, day: date) -> Usage: ...


def _daily_refusal(partner: str, budget: Budget) -> BudgetExceeded:
    return BudgetExceeded(
        f"partner {partner!r} has used its {budget.queries_per_day} queries for today",
        reason="queries_per_day",
        hint="try again tomorrow (UTC) or ask for a larger budget",
    )


class MemoryBudgetBook:
    """The budget book in memory (pure tests, one-shot tools)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._usage: dict[tuple[str, date], Usage] = {}

    def charge(
        self, *, partner: str, session_id: str, day: date, items: int, budget: Budget
    ) -> None:
        if session_id in self._seen:
            raise ReplayError(f"session {session_id} was already used")
        used = self.usage(partner, day)
        if used.queries >= budget.queries_per_day:
            raise _daily_refusal(partner, budget)
        self._seen.add(session_id)
        self._usage[(partner, day)] = Usage(used.queries + 1, used.items + items)

    def usage(self, partner: str, day: date) -> Usage:
        return self._usage.get((partner, day), Usage(0, 0))


_metadata = sa.MetaData()
usage_table = sa.Table(
    "deconflict_budget_usage",
    _metadata,
    sa.Column("partner", sa.String(200), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("queries", sa.Integer, nullable=False),
    sa.Column("items_used", sa.BigInteger, nullable=False),
)
sessions_table = sa.Table(
    "deconflict_seen_sessions",
    _metadata,
    sa.Column("session_id", sa.String(64), primary_key=True),
    sa.Column("partner", sa.String(200), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
)


class SqlBudgetBook:
    """The budget book in the node's database (SQLAlchemy Core, SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = writer(engine)  # its transactions write (SQLite: BEGIN IMMEDIATE)
        _metadata.create_all(self._engine)

    def _insert_ignore(self, values: dict[str, object]) -> sa.Insert:
        if self._engine.dialect.name == "postgresql":
            return postgresql.insert(usage_table).values(values).on_conflict_do_nothing()
        return sqlite.insert(usage_table).values(values).on_conflict_do_nothing()

    def charge(
        self, *, partner: str, session_id: str, day: date, items: int, budget: Budget
    ) -> None:
        with self._engine.begin() as conn:
            # (1) claim the session id; a duplicate key is a replay
            try:
                with conn.begin_nested():
                    conn.execute(
                        sessions_table.insert().values(
                            session_id=session_id, partner=partner, day=day
                        )
                    )
            except sa.exc.IntegrityError:
                raise ReplayError(f"session {session_id} was already used") from None
            # (2) count the query under the daily limit, in one conditional update
            conn.execute(
                self._insert_ignore(dict(partner=partner, day=day, queries=0, items_used=0))
            )
            done = conn.execute(
                usage_table.update()
                .where(usage_table.c.partner == partner, usage_table.c.day == day)
                .where(usage_table.c.queries < budget.queries_per_day)
                .values(
                    queries=usage_table.c.queries + 1, items_used=usage_table.c.items_used + items
                )
            )
            if done.rowcount != 1:
                raise _daily_refusal(partner, budget)

    def usage(self, partner: str, day: date) -> Usage:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(usage_table.c.queries, usage_table.c.items_used).where(
                    usage_table.c.partner == partner, usage_table.c.day == day
                )
            ).first()
        return Usage(0, 0) if row is None else Usage(int(row.queries), int(row.items_used))
