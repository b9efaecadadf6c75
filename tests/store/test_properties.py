"""Property tests of the store contract, on both backends."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.store.helpers import indicator, v

from detente.store import Outcome, Provenance, Query, SqlStore, open_store

_SETTINGS = settings(max_examples=25, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53),
                      st.text(max_size=20))
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.text("abcdefghij_", min_size=1, max_size=8), inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    s = open_store(store_url, create=True)
    yield s
    s.close()


@_SETTINGS
@given(custom=st.dictionaries(st.text("abcdefghij", min_size=1, max_size=6).map(
    lambda k: "x_" + k), json_value, max_size=4), name=st.text(min_size=1, max_size=40))
def test_round_trip_is_exact(store: SqlStore, custom: dict[str, object], name: str) -> None:
    body = indicator(name=name, **custom)
    [res] = store.put_many([v(body)], Provenance())
    assert res.outcome is Outcome.STORED
    got = store.get(body["id"])
    assert got is not None and got.body == body


@_SETTINGS
@given(modified=st.lists(st.integers(0, 3599), min_size=1, max_size=8, unique=True),
       batch=st.booleans())
def test_latest_and_first_follow_version_order(
    store: SqlStore, modified: list[int], batch: bool
) -> None:
    oid = f"indicator--{uuid.uuid4()}"
    objs = [v(indicator(oid, modified=m, name=str(m))) for m in modified]
    if batch:
        store.put_many(objs, Provenance())
    else:
        for o in objs:
            store.put_many([o], Provenance())
    last, first = store.get(oid, "last"), store.get(oid, "first")
    assert last is not None and last.body["name"] == str(max(modified))
    assert first is not None and first.body["name"] == str(min(modified))
    assert len(store.versions(oid)) == len(modified)
    # only one version of the id is "last"
    assert len(store.list(Query(ids=(oid,), versions=("last",))).objects) == 1


@_SETTINGS
@given(sizes=st.lists(st.integers(1, 12), min_size=1, max_size=5),
       limit=st.integers(1, 9))
def test_paging_returns_every_version_once(
    store: SqlStore, sizes: list[int], limit: int
) -> None:
    start = store.list(Query(versions=("all",))).cursor
    ids: list[str] = []
    for n in sizes:
        batch = [v(indicator()) for _ in range(n)]
        store.put_many(batch, Provenance())
        ids.extend(o.id for o in batch)
    seen: list[str] = []
    after = start
    while True:
        page = store.list(Query(versions=("all",), limit=limit, added_after=after))
        seen.extend(o.id for o in page.objects)
        if not page.more:
            break
        after = page.cursor
    assert seen == ids
