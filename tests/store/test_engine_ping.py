"""PostgreSQL connections: pinged at checkout (a connection the server dropped is replaced
before use), except by :func:`read_unpinged`, which saves that round trip and retries once
on a fresh connection instead."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from detente.store.engine import make_engine, read_unpinged


def _drop_backends(pg_url: str, pids: set[int]) -> None:
    """What a server restart does to the pool's connections: their backends end."""
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for pid in pids:
                assert conn.execute(sa.text("SELECT pg_terminate_backend(:p)"),
                                    {"p": pid}).scalar()
    finally:
        admin.dispose()


def _pings(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = engine.dialect.do_ping

    def counted(dbapi_conn: Any) -> bool:
        calls.append(1)
        return bool(real(dbapi_conn))

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return calls


def _pid(conn: sa.Connection) -> int:
    return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def test_a_checkout_is_pinged_and_an_unpinged_read_is_not(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(pg_url)
    try:
        pings = _pings(engine, monkeypatch)
        with engine.connect() as conn:  # a new connection: nothing to ping
            first = _pid(conn)
        assert pings == []
        with engine.connect() as conn:
            assert _pid(conn) == first
        assert len(pings) == 1
        assert read_unpinged(engine, _pid) == first
        assert len(pings) == 1, "read_unpinged pinged"
    finally:
        engine.dispose()


def test_both_recover_from_a_server_restart(pg_url: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            old = _pid(conn)
        _drop_backends(pg_url, {old})
        with engine.connect() as conn:  # the ping finds it dead: another connection
            assert _pid(conn) != old
        with engine.connect() as conn:
            again = _pid(conn)
        _drop_backends(pg_url, {again})
        attempts: list[int] = []

        def work(conn: sa.Connection) -> int:
            attempts.append(1)
            return _pid(conn)

        assert read_unpinged(engine, work, autocommit=True) not in (old, again)
        assert len(attempts) == 2, "the dead connection was used first, then a fresh one"
        # a read that fails for any other reason is not run again
        attempts.clear()

        def bad(conn: sa.Connection) -> None:
            attempts.append(1)
            conn.execute(sa.text("SELECT * FROM no_such_table"))

        with pytest.raises(sa.exc.ProgrammingError):
            read_unpinged(engine, bad)
        assert len(attempts) == 1
    finally:
        engine.dispose()
