"""Opening a database: one place that turns a store URL into a SQLAlchemy engine.

``sqlite:///path`` (the default, one file, WAL) or ``postgresql://...`` (psycopg 3).
Every capability that keeps tables (store, ledger, trust, deconfliction budgets) takes the
engine from here, so SQLite pragmas and the PostgreSQL driver are chosen in one place.

On SQLite a transaction is a read snapshot (``BEGIN``) unless its writer says so with
:func:`writer` (``BEGIN IMMEDIATE``: the write lock taken at the start, so a
read-then-write transaction can never fail to upgrade).  A write statement inside a
transaction that did not say so is refused at once (:class:`StoreError`): a forgotten
``writer()`` shows in the first test that runs it, not as a rare ``database is locked``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import ARRAY

from detente.errors import ConfigError, StoreError

__all__ = ["Statistics", "among", "insert_rows", "is_postgres", "make_engine", "normalise_url",
           "read_unpinged", "reader", "writer"]

T = TypeVar("T")

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")


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
    # everything else takes a plain snapshot and never queues behind a writer.
    if conn.get_execution_options().get("detente_write"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def _sqlite_guard(conn: sa.Connection, _cursor: Any, statement: str, *_: Any) -> None:
    if conn.in_transaction() and not conn.get_execution_options().get("detente_write") \
            and statement.lstrip()[:7].upper().startswith(_WRITES):
        raise StoreError("a write inside a read transaction (internal error)",
                         hint="the writer must use detente.store.engine.writer(engine)")


def reader(engine: sa.Engine) -> sa.Engine:
    """The engine for read-only work (the default): on SQLite a snapshot, not the lock."""
    return engine


def writer(engine: sa.Engine) -> sa.Engine:
    """The same engine for a transaction that writes: on SQLite it takes the write lock at
    ``BEGIN`` (``BEGIN IMMEDIATE``); on PostgreSQL it changes nothing."""
    return engine.execution_options(detente_write=True)


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    """Create an engine for a store URL with detente's connection settings."""
    sa_url = normalise_url(url)
    if sa_url.startswith("sqlite"):
        engine = sa.create_engine(sa_url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        event.listen(engine, "before_cursor_execute", _sqlite_guard)
        return engine
    # Every checkout pings the server (one round trip), so a connection the server dropped
    # — a restart — is replaced before use; :func:`read_unpinged` skips it for reads that
    # retry instead (pool_pre_ping's behaviour, as a checkout hook it can switch off)
    ping = kwargs.pop("pool_pre_ping", True)
    # PostgreSQL's JIT compiles any query costed high — a TAXII page, a releaser chunk's
    # probes, before the statistics catch up with a partner's rows — for longer than it
    # runs (16-40 ms against 1 ms): detente's queries are index probes and short scans, so
    # every connection runs without it (PGOPTIONS the operator set are kept)
    args = dict(kwargs.pop("connect_args", {}))
    args.setdefault("options", f"{os.environ.get('PGOPTIONS', '')} -c jit=off".strip())
    engine = sa.create_engine(sa_url, connect_args=args, **kwargs)
    if ping:
        event.listen(engine, "connect", _fresh)
        event.listen(engine, "checkout", _make_pinger(engine.dialect))
    return engine


#: set while :func:`read_unpinged` checks a connection out: the checkout hook skips its ping
_UNPINGED: ContextVar[bool] = ContextVar("detente_unpinged", default=False)


def _fresh(_dbapi_conn: Any, record: Any) -> None:
    record.info["detente_fresh"] = True  # just connected: nothing to ping


def _make_pinger(dialect: sa.Dialect) -> Callable[[Any, Any, Any], None]:
    def ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if record.info.pop("detente_fresh", False) or _UNPINGED.get():
            return
        try:
            dialect.do_ping(dbapi_conn)
        except Exception as exc:
            if isinstance(exc, dialect.loaded_dbapi.Error) and dialect.is_disconnect(
                    exc, dbapi_conn, None):
                # the pool drops every connection older than now and checks out another
                raise sa.exc.InvalidatePoolError() from exc
            raise
    return ping


def read_unpinged(engine: sa.Engine, work: Callable[[sa.Connection], T], *,
                  autocommit: bool = False) -> T:
    """``work(connection)`` on a pooled connection checked out without the ping (one
    round trip less: a TAXII page is two statements); if that connection turns out dead
    (the server restarted since it was used — the error also drops the pool's older
    connections), ``work`` runs once more on a fresh one.  For reads only: ``work`` must
    be safe to run twice.  ``autocommit`` (PostgreSQL): no BEGIN/ROLLBACK round trips,
    for statements that need no common snapshot."""
    for attempt in (0, 1):
        token = _UNPINGED.set(attempt == 0)
        try:
            conn = reader(engine).connect()
        finally:
            _UNPINGED.reset(token)
        try:
            with conn:
                if autocommit and is_postgres(engine):
                    conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                return work(conn)
        except sa.exc.DBAPIError as exc:
            if attempt or not exc.connection_invalidated:
                raise
    raise AssertionError("unreachable")


def insert_rows(conn: sa.Connection, table: sa.Table, columns: Sequence[str],
                rows: Sequence[Sequence[Any]]) -> None:
    """Insert plain tuples (values in ``columns`` order) in bulk on ``conn``'s transaction.

    The hot paths' bulk insert: Core's ``execute(table.insert(), [dicts])`` processes
    every row's parameters in Python (~5 µs a row on SQLite); this hands the tuples to the
    driver — ``executemany`` on SQLite (through SQLAlchemy, so the write guard still
    applies), ``COPY`` on PostgreSQL (~2.5× pipelined INSERTs).  Defaults are not applied:
    pass every column the table needs."""
    if not rows:
        return
    names = ", ".join(f'"{c}"' for c in columns)
    if is_postgres(conn.engine):
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" * len(columns))
    conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})',  # noqa: S608
                         list(rows))


def among(column: sa.ColumnElement[Any], values: Sequence[str] | Sequence[int] | set[str]
          | set[int], *, postgres: bool) -> sa.ColumnElement[bool]:
    """``column IN values`` with the values bound as ONE parameter, however many.

    ``column.in_(list)`` expands to one bound parameter per value, which SQLAlchemy
    renders and processes per value in Python at every execution (~1 µs each), and which
    must be cut into chunks below the backends' parameter limits.  Here the list is one
    array (PostgreSQL: ``= ANY(%s)``) or one JSON array (SQLite: ``IN (SELECT value FROM
    json_each(?))``, which SQLite answers with one index search per value)."""
    items = list(values)
    if postgres:
        return column == sa.any_(sa.bindparam(None, items, type_=ARRAY(column.type)))
    listed = sa.func.json_each(sa.bindparam(None, orjson.dumps(items).decode(),
                                            type_=sa.Text)).table_valued("value")
    return column.in_(sa.select(listed.c.value))


class Statistics:
    """PostgreSQL: ANALYZE a capability's tables once they grew by a fifth (and 1,000
    rows) since their statistics were taken; nothing on SQLite.

    The planner needs statistics, which autovacuum takes — when it is on (it is off on
    some servers, this project's CI's included) and when it keeps up (a bulk ingest or a
    catch-up adds a table's size in minutes).  Without them it guessed, on a hub of a
    million objects never analyzed, that one object id matched 5,556 versions, and read
    ``store.get(id)`` by walking the date_added index: 0.75 s a call, for each marking a
    release chunk references.  Each capability that grows tables in bulk tells its
    ``Statistics`` what it wrote after each commit; growing by a fifth at a time, N rows
    are analyzed O(log N) times.  The count is this process's: several processes each
    analyze a little early, never wrongly.  ``tables[0]`` is the one whose size is
    tracked (PostgreSQL's own estimate as of its last ANALYZE)."""

    def __init__(self, engine: sa.Engine, tables: Sequence[str]) -> None:
        self.engine, self.tables = engine, tuple(tables)
        self.active = is_postgres(engine)
        self._written = 0
        self._analyzed: float | None = None

    def wrote(self, rows: int) -> None:
        """``rows`` were committed to the tables; ANALYZE them when they grew enough."""
        if not self.active or rows <= 0:
            return
        self._written += rows
        if self._analyzed is None:
            with self.engine.connect() as conn:
                self._analyzed = self._estimate(conn)
        if self._written < max(1000.0, self._analyzed / 5):
            return
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE " + ", ".join(self.tables))
            self._analyzed, self._written = self._estimate(conn), 0

    def _estimate(self, conn: sa.Connection) -> float:
        """PostgreSQL's estimate of the first table's rows at its last ANALYZE (0: none)."""
        tuples = conn.execute(sa.text(
            "SELECT reltuples FROM pg_class WHERE oid = CAST(:name AS regclass)"),
            {"name": self.tables[0]}).scalar()
        return max(0.0, float(tuples or 0))  # -1: never analyzed
