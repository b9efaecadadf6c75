"""Planner statistics kept by the node itself (PostgreSQL), whatever autovacuum does.

This project's PostgreSQL runs with autovacuum off, as some servers do: a table filled in
bulk was never analyzed, and on a hub of a million objects the planner read
``store.get(id)`` by walking the date_added index (0.75 s a call, for every marking a
release chunk references).  The store, earned trust and the release path each ANALYZE
the tables they grow once those grew by a fifth (and 1,000 rows): checked here on the
store and trust tables after ingests of growing size; SQLite has nothing to do.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from tests.store.helpers import indicator, v

from detente.node import Node
from detente.store.base import Provenance, Query
from detente.store.engine import Statistics, make_engine, writer


def _analyzed(engine: sa.Engine, table: str) -> float:
    """pg_class.reltuples: -1 (PostgreSQL 14+) or 0 while never analyzed."""
    with engine.connect() as conn:
        return float(conn.execute(sa.text(
            "SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"),
            {"t": table}).scalar_one())


def _count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


def _batch(n: int, tag: str) -> list[Any]:
    return [v(indicator(f"indicator--{uuid.uuid4()}", name=f"{tag} {i}",
                        pattern=f"[ipv4-addr:value = '10.{i // 65536 % 256}.{i // 256 % 256}."
                                f"{i % 256}']")) for i in range(n)]


def test_store_and_trust_tables_are_analyzed_as_they_grow(pg_url: str, tmp_path: Any) -> None:
    node = Node.init(tmp_path / "node", "stats", store_url=pg_url)
    store, trust = node.store, node.trust
    # autovacuum may be on elsewhere: this database's tables are left to us
    with writer(store.engine).begin() as conn:
        for table in ("stix_objects", "search_docs", "trust_assertions", "trust_claims"):
            conn.exec_driver_sql(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    store.put_many(_batch(10, "few"), Provenance())
    assert _analyzed(store.engine, "stix_objects") <= 0  # 10 rows: not worth an ANALYZE
    store.put_many(_batch(1200, "many"), Provenance())
    for table in ("stix_objects", "search_docs"):
        assert _analyzed(store.engine, table) == _count(store.engine, table) > 1200, table
    # a store get reads by the primary key now that the planner knows the table
    held = store.list(Query(limit=None)).objects
    assert store.get(held[-1].id) == held[-1]
    assert _analyzed(store.engine, "trust_assertions") <= 0
    trust.observe(held, refresh=False)
    for table in ("trust_assertions", "trust_claims"):
        assert _analyzed(store.engine, table) == _count(store.engine, table) > 1200, table
    node.close()


def test_sqlite_has_nothing_to_analyze(tmp_path: Any) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    stats = Statistics(engine, ("nothing_here",))
    stats.wrote(10**6)  # no table, no query: a no-op on SQLite
    assert not stats.active


@pytest.mark.parametrize("rows", [1, 999])
def test_too_few_rows_are_not_analyzed(pg_url: str, rows: int) -> None:
    engine = make_engine(pg_url)
    with writer(engine).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE probe (id int) WITH (autovacuum_enabled = false)")
        conn.exec_driver_sql(f"INSERT INTO probe SELECT generate_series(1, {rows})")
    stats = Statistics(engine, ("probe",))
    stats.wrote(rows)
    assert _analyzed(engine, "probe") <= 0
    with writer(engine).begin() as conn:
        conn.exec_driver_sql("INSERT INTO probe SELECT generate_series(1, 5000)")
    stats.wrote(5000)
    assert _analyzed(engine, "probe") == rows + 5000
    # grown by less than a fifth since: the statistics stand
    with writer(engine).begin() as conn:
        conn.exec_driver_sql("INSERT INTO probe SELECT generate_series(1, 1000)")
    stats.wrote(1000)
    assert _analyzed(engine, "probe") == rows + 5000
    engine.dispose()
