"""Search and the object catalogue (run on SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from tests.store.helpers import CREATOR, OTHER, indicator, ts, v

from detente.errors import ValidationError
from detente.store import Find, Provenance, SqlStore, open_store
from detente.store.search import doc_of, parse_query

TLP_RED = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
TLP_GREEN = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    s = open_store(store_url, create=True)
    yield s
    s.close()


def ids(store: SqlStore, text: str = "", **kw: Any) -> list[str]:
    return [h.id for h in store.find(Find(text=text, **kw)).hits]


def pattern_ind(pattern: str, **kw: Any) -> dict[str, Any]:
    return indicator(pattern=pattern, **kw)


def sco(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "spec_version": "2.1", "id": f"{kind}--{uuid.uuid4()}", **fields}


def attack(tid: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "attack-pattern", "spec_version": "2.1", "id": f"attack-pattern--{uuid.uuid4()}",
        "created": ts(0), "modified": ts(0), "name": name, "created_by_ref": CREATOR,
        "external_references": [{"source_name": "mitre-attack", "external_id": tid,
                                  "url": f"https://attack.mitre.org/techniques/{tid}"}],
        **extra,
    }


@pytest.fixture
def loaded(store: SqlStore) -> dict[str, dict[str, Any]]:
    objs = {
        "ip4": pattern_ind("[ipv4-addr:value = '203.0.113.45']", name="scanner"),
        "ip6": pattern_ind("[ipv6-addr:value = '2001:0db8:0000:0000:0000:0000:0000:0001']",
                           name="v6 host"),
        "domain": pattern_ind("[domain-name:value = 'c2.evil-corp.example']", name="c2 domain"),
        "url": pattern_ind("[url:value = 'https://files.badsite.example/dl/payload.exe']",
                           name="dropper url"),
        "hash": pattern_ind(
            "[file:hashes.'SHA-256' = "
            "'9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08']",
            name="payload hash"),
        "email": pattern_ind("[email-addr:value = 'phisher@mail.badsite.example']",
                             name="sender"),
        "sco_ip": sco("ipv4-addr", value="192.0.2.99"),
        "sco_file": sco("file", name="invoice.pdf.exe",
                        hashes={"MD5": "0cc175b9c0f1b6a831c399e269772661"}),
        "sco_email": sco("email-addr", value="ceo@victim.example"),
        "tool": {"type": "tool", "spec_version": "2.1", "id": f"tool--{uuid.uuid4()}",
                 "created": ts(0), "modified": ts(0), "name": "Mimikatz",
                 "aliases": ["mimi-dump"], "created_by_ref": CREATOR,
                 "description": "Credential dumper that reads LSASS memory."},
        "t1059": attack("T1059", "Command and Scripting Interpreter",
                        description="Adversaries may abuse interpreters such as Mimikatz."),
        "t1059_001": attack("T1059.001", "PowerShell"),
    }
    store.put_many([v(b) for b in objs.values()], Provenance())
    return objs


@pytest.mark.parametrize(("query", "key"), [
    ("203.0.113.45", "ip4"),
    ("2001:db8::1", "ip6"),  # IPv6 written another way
    ("c2.evil-corp.example", "domain"),
    ("https://files.badsite.example/dl/payload.exe", "url"),
    ("9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08", "hash"),
    ("phisher@mail.badsite.example", "email"),
    ("192.0.2.99", "sco_ip"),
    ("0cc175b9c0f1b6a831c399e269772661", "sco_file"),
    ("invoice.pdf.exe", "sco_file"),
    ("ceo@victim.example", "sco_email"),
    ("203[.]0[.]113[.]45", "ip4"),  # defanged
    ("T1059.001", "t1059_001"),
    ("powershell", "t1059_001"),
    ("lsass", "tool"),
    ("mimi-dump", "tool"),
])
def test_observable_and_text_values_are_found(
        store: SqlStore, loaded: dict[str, dict[str, Any]], query: str, key: str) -> None:
    assert ids(store, query) == [loaded[key]["id"]]


def test_a_parent_domain_finds_hosts_urls_and_addresses(
        store: SqlStore, loaded: dict[str, dict[str, Any]]) -> None:
    found = set(ids(store, "badsite.example"))
    assert found == {loaded["url"]["id"], loaded["email"]["id"]}


def test_an_observable_is_matched_whole(store: SqlStore,
                                        loaded: dict[str, dict[str, Any]]) -> None:
    assert ids(store, "203.0.113.4") == []
    assert ids(store, "evil-corp.example.org") == []


def test_attack_id_finds_technique_and_sub_techniques(
        store: SqlStore, loaded: dict[str, dict[str, Any]]) -> None:
    assert set(ids(store, "T1059")) == {loaded["t1059"]["id"], loaded["t1059_001"]["id"]}


def test_name_matches_come_before_description_matches(
        store: SqlStore, loaded: dict[str, dict[str, Any]]) -> None:
    # the tool named Mimikatz first, the technique that mentions it after
    assert ids(store, "mimikatz") == [loaded["tool"]["id"], loaded["t1059"]["id"]]
    assert ids(store, "mimi*") == [loaded["tool"]["id"], loaded["t1059"]["id"]]


def test_all_words_must_match(store: SqlStore, loaded: dict[str, dict[str, Any]]) -> None:
    assert ids(store, "scripting interpreter") == [loaded["t1059"]["id"]]
    assert ids(store, "scripting lsass") == []


def test_type_filter(store: SqlStore, loaded: dict[str, dict[str, Any]]) -> None:
    assert ids(store, "badsite.example", types=("indicator",)) != []
    assert ids(store, "mimikatz", types=("tool",)) == [loaded["tool"]["id"]]
    assert ids(store, "mimikatz", types=("malware",)) == []
    assert set(ids(store, types=("attack-pattern",))) == {loaded["t1059"]["id"],
                                                          loaded["t1059_001"]["id"]}


def test_hits_carry_full_id_type_name_origin(store: SqlStore) -> None:
    body = pattern_ind("[ipv4-addr:value = '198.18.0.1']", name="partner ip",
                       object_marking_refs=[TLP_GREEN, TLP_RED])
    store.put_many([v(body)], Provenance(origin="fr"))
    [hit] = store.find(Find(text="198.18.0.1")).hits
    assert (hit.id, hit.type, hit.name, hit.origin, hit.marking) == (
        body["id"], "indicator", "partner ip", "fr", "red")
    assert ids(store, origins=("fr",)) == [body["id"]]
    assert ids(store, markings=("red",)) == [body["id"]]
    assert ids(store, markings=("green",)) == []


def test_paging_is_stable_and_complete(store: SqlStore) -> None:
    bodies = [pattern_ind(f"[ipv4-addr:value = '10.9.{i // 250}.{i % 250}']",
                          name=f"paged {i}") for i in range(23)]
    store.put_many([v(b) for b in bodies], Provenance())
    for text in ("paged", ""):
        pages = [store.find(Find(text=text, offset=o, limit=10)) for o in (0, 10, 20)]
        seen = [h.id for p in pages for h in p.hits]
        assert [len(p.hits) for p in pages] == [10, 10, 3]
        assert [p.more for p in pages] == [True, True, False]
        assert pages[0].hits != pages[1].hits
        assert sorted(seen) == sorted(b["id"] for b in bodies)
    # newest first
    assert ids(store, "paged", limit=1) == [bodies[-1]["id"]]


def test_a_new_version_replaces_the_old_one_in_the_index(store: SqlStore) -> None:
    body = pattern_ind("[domain-name:value = 'old.example']", name="first name")
    store.put_many([v(body)], Provenance())
    newer = {**body, "modified": ts(5), "name": "second name",
             "pattern": "[domain-name:value = 'new.example']"}
    store.put_many([v(newer)], Provenance())
    assert ids(store, "new.example") == [body["id"]]
    assert ids(store, "old.example") == []
    assert ids(store, "first") == []
    # an older version arriving late changes nothing
    older = {**body, "modified": ts(1), "name": "late name"}
    store.put_many([v(older)], Provenance())
    assert ids(store, "second") == [body["id"]]
    assert ids(store, "late") == []
    assert len(store.find(Find()).hits) == 1


def test_two_versions_in_one_batch_index_the_latest(store: SqlStore) -> None:
    body = indicator(name="alpha")
    store.put_many([v({**body, "modified": ts(3), "name": "gamma"}), v(body)], Provenance())
    assert ids(store, "gamma") == [body["id"]]
    assert ids(store, "alpha") == []


def test_revocation_and_withdrawal_by_delete(store: SqlStore) -> None:
    body = indicator(name="withdrawn thing")
    store.put_many([v(body)], Provenance())
    store.put_many([v({**body, "modified": ts(9), "revoked": True})], Provenance())
    [hit] = store.find(Find(text="withdrawn")).hits
    assert hit.revoked
    store.delete(body["id"], ts(9))  # the revocation deleted: the first version again
    [hit] = store.find(Find(text="withdrawn")).hits
    assert not hit.revoked
    store.delete(body["id"])
    assert ids(store, "withdrawn") == []


def test_creator_copy_replacing_a_relayed_copy_stays_indexed(store: SqlStore) -> None:
    body = indicator(name="relayed", creator=OTHER)
    store.put_many([v(body)], Provenance(origin="de"))
    creators_copy = v({**body, "description": "creator's own words"})
    store.put_many([creators_copy], Provenance(origin="fr", origin_identity=OTHER))
    [hit] = store.find(Find(text="relayed")).hits
    assert hit.origin == "fr"
    assert ids(store, "creator") == [body["id"]]


def test_an_existing_home_is_backfilled_on_open(store_url: str) -> None:
    s = open_store(store_url, create=True)
    bodies = [indicator(name=f"legacy {i}") for i in range(5)]
    s.put_many([v(b) for b in bodies], Provenance())
    with s.transaction() as conn:  # a home from before the index existed
        conn.execute(sa.text("DELETE FROM store_meta WHERE key = 'search_index'"))
        conn.execute(sa.text("DELETE FROM search_docs"))
    s.close()
    s = open_store(store_url, create=True)
    try:
        assert sorted(ids(s, "legacy")) == sorted(b["id"] for b in bodies)
        more = indicator(name="legacy later")
        s.put_many([v(more)], Provenance())
        assert ids(s, "later") == [more["id"]]
        assert s.rebuild_search() == 6
        assert len(ids(s, "legacy")) == 6
    finally:
        s.close()


def test_empty_query_is_a_clear_error(store: SqlStore) -> None:
    with pytest.raises(ValidationError, match="nothing to search for"):
        store.find(Find(text="  !!! "))


def test_query_syntax_cannot_inject(store: SqlStore, loaded: dict[str, dict[str, Any]]) -> None:
    for text in ('" OR 1', "NEAR(a b)", "a:b", "names : x", "') ; DROP TABLE x; --",
                 "a&b|!c", "x:*"):
        store.find(Find(text=text))  # no error from the database's query syntax
    assert ids(store, "mimikatz OR") == []


def test_doc_of_indexes_relationships_by_type() -> None:
    rel = {"type": "relationship", "id": "relationship--" + str(uuid.uuid4()),
           "relationship_type": "uses", "source_ref": "tool--a", "target_ref": "malware--b"}
    assert "uses" in doc_of(rel).name
    assert parse_query("T1059")[0].phrase == ("t1059",)


def test_a_stix_id_finds_its_object(store: SqlStore,
                                    loaded: dict[str, dict[str, Any]]) -> None:
    oid = loaded["tool"]["id"]
    assert ids(store, oid) == [oid]
    assert ids(store, oid, types=("indicator",)) == []


def test_ranked_in_memory_and_streamed_agree(store: SqlStore, loaded: dict[str, dict[str, Any]],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import detente.store.search as search

    bodies = [pattern_ind(f"[ipv4-addr:value = '10.8.0.{i}']", name=f"relay {i}",
                          description="mimikatz seen") for i in range(12)]
    store.put_many([v(b) for b in bodies], Provenance())
    queries = ("mimikatz", "relay", "seen", "badsite.example")
    want = {(t, o): ids(store, t, offset=o, limit=5) for t in queries for o in (0, 5, 10)}
    assert want[("mimikatz", 0)][0] == loaded["tool"]["id"]  # the name match first
    monkeypatch.setattr(search, "_CAP", 2)  # PostgreSQL streams beyond the cap
    assert {(t, o): ids(store, t, offset=o, limit=5) for t in queries for o in (0, 5, 10)} \
        == want


def test_a_nul_in_a_name_is_stored_and_found_on_every_backend(store: SqlStore) -> None:
    """Hypothesis found it: PostgreSQL text cannot hold NUL, and the index copied names."""
    body = indicator(name="relay\x00 raqqa")
    store.put_many([v(body)], Provenance())
    got = store.get(body["id"])
    assert got is not None and got.body["name"] == "relay\x00 raqqa"
    assert [h.id for h in store.find(Find(text="raqqa")).hits] == [body["id"]]
