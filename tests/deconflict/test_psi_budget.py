"""Budgets hold: per query, per day, per set-size ratio; on both database backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from tests.deconflict.psi_helpers import items, responder

from detente.deconflict import (
    Budget,
    BudgetBook,
    BudgetExceeded,
    Budgets,
    MemoryBudgetBook,
    Mode,
    Outcome,
    ReplayError,
    Requester,
    SqlBudgetBook,
    Usage,
)
from detente.store.engine import make_engine

DAY = date(2025, 11, 13)
TIGHT = Budget(items_per_query=3, queries_per_day=2, max_set_ratio=1.0)


@pytest.fixture
def engine(store_url: str) -> Iterator[sa.Engine]:
    made = make_engine(store_url)
    yield made
    made.dispose()


@pytest.fixture
def sql_book(engine: sa.Engine) -> SqlBudgetBook:
    return SqlBudgetBook(engine)


def _charge(book: BudgetBook, sid: str, partner: str = "ru", day: date = DAY) -> None:
    book.charge(partner=partner, session_id=sid, day=day, items=3, budget=TIGHT)


def _contract(book: BudgetBook) -> None:
    _charge(book, "s1")
    _charge(book, "s2")
    with pytest.raises(BudgetExceeded) as refused:
        _charge(book, "s3")
    assert refused.value.reason == "queries_per_day" and "ru" in refused.value.message
    assert book.usage("ru", DAY) == Usage(2, 6)  # the refusal consumed nothing
    with pytest.raises(ReplayError, match="s1"):
        _charge(book, "s1", partner="fr")  # a session id is claimed once, for everyone
    _charge(book, "s3", partner="fr")  # the refused id was not claimed; other partner's budget
    _charge(book, "s4", day=date(2025, 11, 14))  # a new day
    assert book.usage("ru", date(2025, 11, 14)) == Usage(1, 3)
    assert book.usage("nobody", DAY) == Usage(0, 0)


def test_memory_book_contract() -> None:
    _contract(MemoryBudgetBook())


def test_sql_book_contract(sql_book: SqlBudgetBook) -> None:
    _contract(sql_book)


def test_sql_book_persists_across_engines(engine: sa.Engine, store_url: str) -> None:
    _charge(SqlBudgetBook(engine), "s1")
    engine.dispose()
    second = make_engine(store_url)
    try:
        again = SqlBudgetBook(second)
        assert again.usage("ru", DAY) == Usage(1, 3)
        with pytest.raises(ReplayError):
            _charge(again, "s1")
    finally:
        second.dispose()


def _clock(day: date) -> Callable[[], datetime]:
    return lambda: datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ([f"{i}.example" for i in range(4)], "items_per_query"),  # 4 > 3 per query
        (["a.example", "b.example", "c.example"], "max_set_ratio"),  # 3 > 1.0 × 2
    ],
)
def test_the_responder_refuses_explicitly(query: list[str], reason: str) -> None:
    resp = responder(items(["a.example", "b.example"]), budgets=Budgets(TIGHT))
    with pytest.raises(BudgetExceeded) as refused:
        resp.answer(Requester(items(query), mode=Mode.CARDINALITY, partner="x").start(),
                    partner="ru")  # fmt: skip
    assert refused.value.reason == reason
    assert refused.value.http_status == 429
    record = resp.records[-1]
    assert record.outcome is Outcome.REFUSED
    assert record.reason == refused.value.message
    assert record.matches is None and record.remote_size == len(query)


def test_daily_budget_holds_through_the_responder(sql_book: SqlBudgetBook) -> None:
    resp = responder(items(["a", "b", "c"]), budgets=Budgets(TIGHT), book=sql_book,
                     clock=_clock(DAY))  # fmt: skip
    for _ in range(2):
        resp.answer(Requester(items(["a"]), mode=Mode.CARDINALITY, partner="x").start(),
                    partner="ru")  # fmt: skip
    with pytest.raises(BudgetExceeded, match="used its 2 queries"):
        resp.answer(Requester(items(["a"]), mode=Mode.CARDINALITY, partner="x").start(),
                    partner="ru")  # fmt: skip
    # another partner has its own budget
    resp.answer(Requester(items(["a"]), mode=Mode.CARDINALITY, partner="x").start(),
                partner="fr")  # fmt: skip
    assert sql_book.usage("ru", DAY) == Usage(2, 2)


def test_per_partner_overrides() -> None:
    budgets = Budgets(TIGHT, {"fr": Budget(items_per_query=100)})
    assert budgets.for_partner("fr").items_per_query == 100
    assert budgets.for_partner("ru") is TIGHT
