"""The hot path's bulk helpers answer exactly what the plain SQLAlchemy forms answer.

``among`` (one bound array instead of an expanded IN list) and ``insert_rows`` (driver
``executemany`` / ``COPY`` instead of Core's per-row parameter processing), on both
backends; and the SQLite write guard still refuses a bulk insert outside ``writer()``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from detente.errors import StoreError
from detente.store.engine import among, insert_rows, is_postgres, make_engine, writer

_meta = sa.MetaData()
_t = sa.Table(
    "bulk_probe", _meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("flag", sa.Boolean, nullable=False),
    sa.Column("note", sa.Text),
)


@pytest.fixture
def engine(store_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(store_url)
    _meta.create_all(writer(eng))
    yield eng
    eng.dispose()


def _rows(n: int) -> list[tuple[int, str, bool, str | None]]:
    # quotes, tabs, backslashes, newlines and non-ASCII: COPY's text format escapes them
    odd = ["it's", "tab\there", "back\\slash", "new\nline", "ünïcødé", "", "NULL", "\\N"]
    return [(i, f"{odd[i % len(odd)]}-{i}", i % 3 == 0, None if i % 5 == 0 else odd[i % 8])
            for i in range(1, n + 1)]


def test_insert_rows_stores_exactly_the_tuples(engine: sa.Engine) -> None:
    rows = _rows(1200)
    with writer(engine).begin() as conn:
        insert_rows(conn, _t, ("id", "name", "flag", "note"), rows)
        insert_rows(conn, _t, ("id", "name", "flag", "note"), [])  # nothing to do
    with engine.connect() as conn:
        got = [(int(r[0]), r[1], bool(r[2]), r[3])
               for r in conn.execute(sa.select(_t).order_by(_t.c.id))]
    assert got == rows


def test_insert_rows_joins_the_callers_transaction(engine: sa.Engine) -> None:
    with pytest.raises(RuntimeError), writer(engine).begin() as conn:
        insert_rows(conn, _t, ("id", "name", "flag"), [(1, "a", True)])
        raise RuntimeError("roll back")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(_t)).scalar() == 0


def test_among_matches_in(engine: sa.Engine) -> None:
    rows = _rows(300)
    with writer(engine).begin() as conn:
        insert_rows(conn, _t, ("id", "name", "flag", "note"), rows)
    pg = is_postgres(engine)
    names = [r[1] for r in rows[::7]] + ["absent", "it's-0", "ünïcødé-5"]
    ids = [r[0] for r in rows[::11]] + [0, 10_000]
    with engine.connect() as conn:
        for column, values in ((_t.c.name, names), (_t.c.id, ids)):
            plain = set(conn.execute(sa.select(_t.c.id).where(column.in_(values))).scalars())
            one = set(conn.execute(sa.select(_t.c.id).where(
                among(column, values, postgres=pg))).scalars())
            assert one == plain and plain
        assert conn.execute(sa.select(_t.c.id).where(
            among(_t.c.id, [], postgres=pg))).all() == []


def test_sqlite_bulk_insert_outside_writer_is_refused(tmp_path: object) -> None:
    eng = make_engine(f"sqlite:///{tmp_path}/guard.db")
    _meta.create_all(writer(eng))
    try:
        with pytest.raises(StoreError, match="write inside a read transaction"), \
                eng.begin() as conn:
            insert_rows(conn, _t, ("id", "name", "flag"), [(1, "a", True)])
    finally:
        eng.dispose()


def test_postgresql_connections_run_without_jit_and_keep_the_operators_options(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every connection of a PostgreSQL store engine — pages, the releaser, the workers —
    runs with JIT off (it compiled a page's plan for longer than the page ran), and
    options the operator gave in PGOPTIONS still apply."""
    monkeypatch.setenv("PGOPTIONS", "-c statement_timeout=123456")
    eng = make_engine(pg_url)
    try:
        with eng.connect() as conn:
            assert conn.exec_driver_sql("SHOW jit").scalar() == "off"
            assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "123456ms"
    finally:
        eng.dispose()
