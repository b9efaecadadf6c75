"""The small tables behind the ledger and deconfliction endpoints, on both backends:
cosignatures, planned operations, budgets; and the parsers that guard them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from nacl.signing import SigningKey

from detente.deconflict import Budget, PlaceTimeGrid
from detente.errors import ValidationError
from detente.federation.psi.budgets import DEFAULT, BudgetTable
from detente.federation.psi.sets import (
    OperationsBook,
    format_grid,
    parse_grid,
    parse_operations,
)
from detente.federation.witnessing.cosignatures import CosignatureBook
from detente.ledger import Checkpoint, Cosignature
from detente.schema import create_schema
from detente.store.sql import open_store

OPS = [{"name": "raqqa-north", "latitude": 35.97, "longitude": 39.01, "radius_m": 300,
        "start": "2025-11-20T08:00:00Z", "end": "2025-11-20T12:00:00Z", "contact": "desk"}]


def _engine(store_url: str) -> sa.Engine:
    """A database with every node table, as ``init`` leaves it."""
    store = open_store(store_url, create=True)
    create_schema(store)
    return store.engine


def test_cosignatures_are_kept_per_tree_and_witness(store_url: str) -> None:
    engine = _engine(store_url)
    book = CosignatureBook(engine)
    log, fr = SigningKey(b"\x01" * 32), SigningKey(b"\x02" * 32)
    cp = Checkpoint.sign("detente/us", 3, b"\x07" * 32, log, "detente/us")
    other = Checkpoint.sign("detente/us", 3, b"\x08" * 32, log, "detente/us")
    book.add(cp, Cosignature.create(cp, fr, "detente/fr", timestamp=10))
    book.add(cp, Cosignature.create(cp, fr, "detente/fr", timestamp=20))
    book.add(cp, Cosignature.create(cp, fr, "detente/fr", timestamp=15))  # older: ignored
    [kept] = book.attach(cp).cosignatures({"detente/fr": fr.verify_key})
    assert kept.timestamp == 20
    assert book.witnesses(other) == []  # a different root of the same size gets none
    engine.dispose()


def test_operations_load_update_replace(store_url: str) -> None:
    engine = _engine(store_url)
    book = OperationsBook(engine)
    [first] = book.load(parse_operations(OPS))
    assert first.handle.startswith("op-")
    moved = [{**OPS[0], "radius_m": 900}, {**OPS[0], "name": "deir-ez-zor"}]
    book.load(parse_operations(moved))
    ops = {o.name: o for o in book.all()}
    assert ops["raqqa-north"].handle == first.handle and ops["raqqa-north"].radius_m == 900
    assert ops["raqqa-north"].start == datetime(2025, 11, 20, 8, tzinfo=UTC)
    book.load(parse_operations(OPS), replace=True)
    assert [o.name for o in book.all()] == ["raqqa-north"]
    engine.dispose()


def test_budgets_default_and_per_partner(store_url: str) -> None:
    engine = _engine(store_url)
    table = BudgetTable(engine)
    assert table.budgets().for_partner("fr") == Budget()
    table.set(DEFAULT, Budget(10, 5, 2.0))
    table.set("fr", Budget(3, 1, 1.0))
    table.set("fr", Budget(4, 1, 1.0))
    budgets = table.budgets()
    assert budgets.for_partner("ru") == Budget(10, 5, 2.0)
    assert budgets.for_partner("fr") == Budget(4, 1, 1.0)
    with pytest.raises(ValidationError):
        table.set("fr", Budget(0, 1, 1.0))
    engine.dispose()


@pytest.mark.parametrize("doc, what", [
    ({}, "JSON list"),
    ([1], "not a JSON object"),
    ([{**OPS[0], "name": ""}], "no name"),
    ([{**OPS[0], "latitude": "north"}], "latitude must be a number"),
    ([{**OPS[0], "latitude": 95}], "latitude and longitude"),
    ([{**OPS[0], "start": "2025-11-20T08:00:00"}], "no timezone"),
    ([{**OPS[0], "end": "2025-11-19T08:00:00Z"}], "ends before"),
    ([OPS[0], OPS[0]], "unique"),
])
def test_bad_operations_are_refused_by_name(doc: object, what: str) -> None:
    with pytest.raises(ValidationError, match=what):
        parse_operations(doc)


def test_grids_round_trip_and_refuse_garbage() -> None:
    grid = PlaceTimeGrid(9, 200.0, 1800, 600)
    assert parse_grid(format_grid(grid)) == grid
    assert parse_grid(None) == PlaceTimeGrid()
    for bad in ("r8", "r8:d500:b3600", "r99:d1:b1:s0", "r8:d-1:b1:s0"):
        with pytest.raises(ValidationError):
            parse_grid(bad)
