"""The store contract: every backend behaves exactly alike (run on SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator

import pytest
from tests.store.helpers import CREATOR, OTHER, indicator, ts, v

from detente.errors import StoreError
from detente.store import Outcome, Provenance, Query, SqlStore, open_store


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    s = open_store(store_url, create=True)
    yield s
    s.close()


def test_round_trip_keeps_body_and_provenance(store: SqlStore) -> None:
    body = indicator(x_custom_field={"nested": [1, 2]})
    prov = Provenance(origin="fr", received_at=123, signature="sig", receipt="rcpt")
    [res] = store.put_many([v(body)], prov)
    assert res.outcome is Outcome.STORED
    got = store.get(body["id"])
    assert got is not None
    assert got.body == body
    assert got.provenance.origin == "fr"
    assert (got.provenance.signature, got.provenance.receipt) == ("sig", "rcpt")
    assert got.date_added == res.date_added


def test_identical_resubmission_is_a_duplicate(store: SqlStore) -> None:
    body = indicator()
    store.put_many([v(body)], Provenance())
    [res] = store.put_many([v(dict(body))], Provenance())
    assert res.outcome is Outcome.DUPLICATE
    assert store.count() == 1


def test_same_version_different_content_is_a_conflict(store: SqlStore) -> None:
    body = indicator()
    store.put_many([v(body)], Provenance())
    [res] = store.put_many([v({**body, "name": "changed"})], Provenance())
    assert res.outcome is Outcome.REJECTED
    assert res.reason is not None and "version conflict" in res.reason
    stored = store.get(body["id"])
    assert stored is not None and stored.body["name"] == "bad ip"


def test_new_version_must_come_from_creator(store: SqlStore) -> None:
    body = indicator()
    store.put_many([v(body)], Provenance())
    [res] = store.put_many([v(indicator(body["id"], modified=5, creator=OTHER))], Provenance())
    assert res.outcome is Outcome.REJECTED
    assert res.reason is not None and "creator" in res.reason


def test_revoked_object_gets_no_new_versions(store: SqlStore) -> None:
    oid = indicator()["id"]
    store.put_many([v(indicator(oid, modified=1, revoked=True))], Provenance())
    [res] = store.put_many([v(indicator(oid, modified=2))], Provenance())
    assert res.outcome is Outcome.REJECTED
    assert res.reason is not None and "revoked" in res.reason


def test_version_selectors(store: SqlStore) -> None:
    oid = indicator()["id"]
    # stored out of order: the flags must follow version order, not arrival order
    for m in (5, 1, 9, 3):
        store.put_many([v(indicator(oid, modified=m, name=f"v{m}"))], Provenance())
    last, first = store.get(oid, "last"), store.get(oid, "first")
    assert last is not None and last.body["name"] == "v9"
    assert first is not None and first.body["name"] == "v1"
    exact = store.get(oid, ts(3))
    assert exact is not None and exact.body["name"] == "v3"
    assert store.get(oid, ts(4)) is None
    assert [o.body["name"] for o in store.versions(oid)] == ["v5", "v1", "v9", "v3"]


def test_two_versions_in_one_batch(store: SqlStore) -> None:
    oid = indicator()["id"]
    res = store.put_many(
        [v(indicator(oid, modified=2, name="b")), v(indicator(oid, modified=1, name="a"))],
        Provenance(),
    )
    assert [r.outcome for r in res] == [Outcome.STORED, Outcome.STORED]
    last = store.get(oid)
    assert last is not None and last.body["name"] == "b"
    assert len(store.list(Query(ids=(oid,))).objects) == 1


def test_date_added_strictly_increasing(store: SqlStore) -> None:
    added: list[int] = []
    for _ in range(3):
        res = store.put_many([v(indicator()) for _ in range(50)], Provenance())
        added.extend(r.date_added for r in res if r.date_added is not None)
    assert len(added) == 150
    assert all(a < b for a, b in itertools.pairwise(added))


def test_filters_and_paging(store: SqlStore) -> None:
    objs = [indicator() for _ in range(25)]
    store.put_many([v(o) for o in objs], Provenance())
    malware = {
        "type": "malware", "spec_version": "2.1", "id": f"malware--{uuid.uuid4()}",
        "created": ts(0), "modified": ts(0), "name": "x", "is_family": False,
    }
    store.put_many([v(malware)], Provenance(origin="ru"))
    assert [o.id for o in store.list(Query(types=("malware",))).objects] == [malware["id"]]
    assert store.list(Query(origins=("ru",))).objects[0].id == malware["id"]
    assert len(store.list(Query(spec_versions=("2.0",))).objects) == 0
    seen: list[str] = []
    after = None
    while True:
        page = store.list(Query(types=("indicator",), limit=7, added_after=after))
        seen.extend(o.id for o in page.objects)
        if not page.more:
            break
        after = page.cursor
    assert seen == [o["id"] for o in objs]


def test_delete_recomputes_latest(store: SqlStore) -> None:
    oid = indicator()["id"]
    store.put_many([v(indicator(oid, modified=m)) for m in (1, 2)], Provenance())
    assert store.delete(oid, ts(2)) == 1
    last = store.get(oid)
    assert last is not None and last.version.startswith("2024-01-01T00:00:01")


def test_batch_is_all_or_nothing(store: SqlStore) -> None:
    good = v(indicator())
    with pytest.raises(RuntimeError), store.transaction() as conn:
        store.put_many([good], Provenance(), conn=conn)
        raise RuntimeError("abort after write")
    assert store.get(good.id) is None


def test_flags_merge(store: SqlStore) -> None:
    o = v(indicator())
    store.put_many([o], Provenance(origin="fr", flags={"a": 1}))
    store.set_flags(o.id, o.version, {"echo": True})
    got = store.get(o.id)
    assert got is not None and dict(got.provenance.flags) == {"a": 1, "echo": True}
    with pytest.raises(StoreError):
        store.set_flags(o.id, "nope", {"x": 1})


def test_concurrent_inserts_page_every_version_exactly_once(store_url: str) -> None:
    """Writers insert while a reader pages with added_after; the reader, having paged to
    the end after the writers stop, has seen every version exactly once."""
    store = open_store(store_url, create=True)
    writers_store = [open_store(store_url) for _ in range(3)]
    expected: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def write(s: SqlStore) -> None:
        for _ in range(15):
            batch = [v(indicator()) for _ in range(10)]
            s.put_many(batch, Provenance())
            with lock:
                expected.extend(o.id for o in batch)

    seen: list[str] = []
    after: int | None = None

    def read_some() -> None:
        nonlocal after
        page = store.list(Query(versions=("all",), limit=13, added_after=after))
        seen.extend(o.id for o in page.objects)
        if page.cursor is not None:
            after = page.cursor

    threads = [threading.Thread(target=write, args=(s,)) for s in writers_store]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        read_some()
    for t in threads:
        t.join(timeout=60)
    stop.set()
    for _ in range(100):
        before = len(seen)
        read_some()
        if len(seen) == before:
            break
    assert len(seen) == len(set(seen)) == 450
    assert set(seen) == set(expected)
    for s in [store, *writers_store]:
        s.close()


def test_open_missing_store_is_clear(tmp_path: object) -> None:
    with pytest.raises(StoreError, match="cannot open the store"):
        open_store(f"sqlite:///{tmp_path}/none.db")


def test_readers_do_not_wait_for_a_writer(store: SqlStore) -> None:
    """A long write transaction must not block reads (SQLite: snapshot reads in WAL)."""
    o = v(indicator())
    store.put_many([o], Provenance())
    with store.transaction() as conn:
        store.put_many([v(indicator())], Provenance(), conn=conn)
        # inside the open write transaction, another connection still reads
        assert store.get(o.id) is not None
        assert store.count() == 1


def test_the_creators_copy_is_authoritative_over_relays(store: SqlStore) -> None:
    """Each route's copy is fingerprinted, so copies differ: the creator's copy wins."""
    body = indicator(creator=CREATOR)
    relayed = {**body, "labels": ["b", "a"]}  # fingerprinted differently by the relay
    direct = {**body, "labels": ["a", "b"]}
    [r1] = store.put_many([v(relayed)], Provenance(origin="fr", origin_identity=OTHER))
    assert r1.outcome is Outcome.STORED
    # another relay's copy of the same version: a duplicate by another route
    [r2] = store.put_many([v({**body, "labels": ["a", "b", "c"]})],
                          Provenance(origin="de", origin_identity="identity--"
                                     "7d1c2f3e-0000-4000-8000-000000000001"))
    assert r2.outcome is Outcome.DUPLICATE and r2.reason and "another route" in r2.reason
    # the creator's own copy replaces the relayed one, and says so
    [r3] = store.put_many([v(direct)], Provenance(origin="us", origin_identity=CREATOR))
    assert r3.outcome is Outcome.STORED and r3.reason and "relayed by fr" in r3.reason
    got = store.get(body["id"])
    assert got is not None and got.body["labels"] == ["a", "b"]
    assert got.provenance.origin == "us"
    assert len(store.versions(body["id"])) == 1
    # a relay arriving after the creator's copy cannot displace it
    [r4] = store.put_many([v(relayed)], Provenance(origin="fr", origin_identity=OTHER))
    assert r4.outcome is Outcome.DUPLICATE
    # the creator re-issuing its copy (our view changed with our tier) replaces it
    [r5] = store.put_many([v({**body, "labels": ["z"]})],
                          Provenance(origin="us", origin_identity=CREATOR))
    assert r5.outcome is Outcome.STORED and "re-issued" in (r5.reason or "")
    # a relay sending two contents for one version it relayed is a conflict
    other = indicator(creator=CREATOR)
    store.put_many([v(other)], Provenance(origin="fr", origin_identity=OTHER))
    [r6] = store.put_many([v({**other, "name": "changed"})],
                          Provenance(origin="fr", origin_identity=OTHER))
    assert r6.outcome is Outcome.REJECTED and "conflict" in (r6.reason or "")


def test_held_reports_ids_by_origin(store: SqlStore) -> None:
    mine, theirs = v(indicator()), v(indicator())
    store.put_many([mine], Provenance())
    store.put_many([theirs], Provenance(origin="fr"))
    absent = indicator()["id"]
    assert store.held([mine.id, theirs.id, absent]) == {mine.id, theirs.id}
    assert store.held([mine.id, theirs.id], origins=("fr",)) == {theirs.id}
    assert store.held([]) == set()


def test_held_versions_answers_the_intake_questions_in_one_read(store: SqlStore) -> None:
    mine, theirs = v(indicator()), v(indicator())
    store.put_many([mine], Provenance())
    store.put_many([theirs], Provenance(origin="fr"))
    # a later version of the same object from another source: both are listed
    later = v({**theirs.body, "modified": ts(5)})
    store.put_many([later], Provenance(origin="ru"))
    absent = indicator()["id"]
    got = store.held_versions([mine.id, theirs.id, absent, mine.id])
    assert got == {mine.id: {mine.version: "local"},
                   theirs.id: {theirs.version: "fr", later.version: "ru"}}
    # the same answers as the reads it replaces
    assert set(got) == store.held([mine.id, theirs.id, absent])
    assert {i for i, vs in got.items() if "local" in vs.values()} == \
        store.held([mine.id, theirs.id, absent], ("local",))
    for oid, versions in got.items():
        for version in (*versions, ts(9)):
            assert (version in versions) == (store.get(oid, version) is not None)
    assert store.held_versions([]) == {}


def test_referring_finds_latest_relationships_and_sightings_naming_an_id(
        store: SqlStore) -> None:
    target, other = v(indicator()), v(indicator())
    ident = f"identity--{uuid.uuid4()}"

    def rel(src: str, dst: str, modified: str) -> dict[str, object]:
        return {"type": "relationship", "spec_version": "2.1", "id": rel_id, "created": ts(1),
                "modified": modified, "relationship_type": "related-to", "source_ref": src,
                "target_ref": dst, "created_by_ref": CREATOR}

    rel_id = f"relationship--{uuid.uuid4()}"
    sighting = {"type": "sighting", "spec_version": "2.1", "id": f"sighting--{uuid.uuid4()}",
                "created": ts(1), "modified": ts(1), "sighting_of_ref": target.id,
                "where_sighted_refs": [ident], "created_by_ref": CREATOR}
    store.put_many([target, other, v(rel(other.id, target.id, ts(1))), v(sighting)],
                   Provenance())
    # a later version of the relationship no longer names the target: not found
    store.put_many([v(rel(other.id, other.id, ts(2)))], Provenance())
    found = store.referring(target.id, ("relationship", "sighting"))
    assert [o.id for o in found] == [sighting["id"]]
    assert [o.id for o in store.referring(other.id, ("relationship",))] == [rel_id]
    assert store.referring(target.id, ("relationship",)) == ()
    assert store.referring("indicator--0%", ("relationship", "sighting")) == ()
    # deleting the sighting drops it from the index
    assert store.delete(str(sighting["id"])) == 1
    assert store.referring(target.id, ("relationship", "sighting")) == ()


def test_a_store_made_before_the_reference_index_is_indexed_when_opened(
        store: SqlStore, store_url: str) -> None:
    import sqlalchemy as sa

    from detente.schema import create_schema
    from detente.store.engine import writer

    target = v(indicator())
    rel = {"type": "relationship", "spec_version": "2.1", "id": f"relationship--{uuid.uuid4()}",
           "created": ts(1), "modified": ts(1), "relationship_type": "indicates",
           "source_ref": target.id, "target_ref": f"malware--{uuid.uuid4()}"}
    store.put_many([target, v(rel)], Provenance())
    with writer(store.engine).begin() as conn:
        conn.execute(sa.text("DROP TABLE stix_refs"))  # as an older detente left it
    again = open_store(store_url)
    try:
        create_schema(again)  # what opening a node does
        assert [o.id for o in again.referring(target.id, ("relationship",))] == [rel["id"]]
    finally:
        again.close()
