"""Opening a database: one place that turns a store URL into a SQLAlchemy engine.

``sqlite:///path`` (the default, one file, WAL) or ``postgresql://...`` (psycopg 3).
Every capability that keeps tables (store, ledger, trust, deconfliction budgets) takes the
engine from here, so SQLite pragmas and the PostgreSQL driver are chosen in one place.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from detente.errors import ConfigError

__all__ = ["is_postgres", "make_engine", "normalise_url", "reader"]


def normalise_url(url: str) -> str:
    """Map user-facing URLs to SQLAlchemy ones (``postgresql://`` → psycopg 3)."""
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith(("sqlite:///", "postgresql+psycopg://")):
        return url
    raise ConfigError(
        f"unsupported store URL {url!r}",
        hint="use sqlite:///PATH or postgresql://USER@HOST:PORT/DB",
    )


def is_postgres(engine: sa.Engine) -> bool:
    return engine.dialect.name == "postgresql"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy manage transactions explicitly (the pysqlite default emits its own
    # BEGIN lazily, which breaks "a batch is stored whole or not at all").
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA cache_size=-65536")  # 64 MB: index pages stay cached as tables grow
    cur.execute("PRAGMA wal_autocheckpoint=16384")  # checkpoint (and fsync) every ~64 MB
    cur.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    # Writers take the write lock at BEGIN (no deadlock upgrading a read lock later);
    # readers marked with `reader()` take a plain snapshot and never queue behind them.
    if conn.get_execution_options().get("detente_read"):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def reader(engine: sa.Engine) -> sa.Engine:
    """The same engine for read-only work: on SQLite a snapshot, not the write lock."""
    return engine.execution_options(detente_read=True)


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    """Create an engine for a store URL with detente's connection settings."""
    sa_url = normalise_url(url)
    if sa_url.startswith("sqlite"):
        engine = sa.create_engine(sa_url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(sa_url, **kwargs)
