"""The PSI modes: results equal the plain set operations, and nothing more leaks."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.deconflict.psi_helpers import items, pointers_for, responder, run_session

from detente.deconflict import (
    Item,
    Mode,
    Outcome,
    Pointer,
    ProtocolError,
    QueryMessage,
    Requester,
    Role,
    SetDigest,
    WrongModeError,
    _group,
)

labels = st.sets(st.text(alphabet="abcdefgh", min_size=1, max_size=3), min_size=1, max_size=25)
PSI = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PSI
@given(mine=labels, theirs=labels)
def test_intersection_equals_the_plain_intersection(mine: set[str], theirs: set[str]) -> None:
    result, _, _ = run_session(items(mine), responder(items(theirs)), Mode.INTERSECTION)
    assert result.items is not None
    assert {i.value for i in result.items} == mine & theirs
    assert result.count == len(mine & theirs)
    assert result.pointers is None


@PSI
@given(mine=labels, theirs=labels)
def test_cardinality_yields_the_size_and_no_item(mine: set[str], theirs: set[str]) -> None:
    result, _, _ = run_session(items(mine), responder(items(theirs)), Mode.CARDINALITY)
    assert result.count == len(mine & theirs)
    assert result.items is None and result.pointers is None


@PSI
@given(mine=labels, theirs=labels)
def test_pointer_mode_yields_exactly_the_matches_pointers(mine: set[str], theirs: set[str]) -> None:
    resp = responder(items(theirs))
    result, _, req = run_session(items(mine), resp, Mode.POINTER)
    assert result.items is None
    assert result.pointers is not None
    real = [resp.resolve(req.session_id, p.handle) for p in result.pointers]
    assert sorted(p.handle for p in real if p) == sorted(f"op-{v}" for v in mine & theirs)
    assert not {p.handle for p in result.pointers} & {f"op-{v}" for v in theirs}
    assert {p.contact for p in result.pointers} <= {"duty-officer@fr.example"}


@PSI
@given(mine=labels, theirs=labels)
def test_mutual_mode_gives_both_sides_the_intersection(mine: set[str], theirs: set[str]) -> None:
    result, theirs_result, _ = run_session(items(mine), responder(items(theirs)), Mode.MUTUAL)
    assert theirs_result is not None
    assert result.items is not None and theirs_result.items is not None
    assert {i.value for i in result.items} == mine & theirs
    assert {i.value for i in theirs_result.items} == mine & theirs


def test_the_responder_never_receives_a_requester_item_in_the_clear() -> None:
    mine = items([f"secret-op-{i}.example" for i in range(50)])
    query = Requester(mine, mode=Mode.INTERSECTION, partner="fr").start().to_bytes()
    hashed = _group.split(_group.hash_to_group([i.encoded() for i in mine]))
    for item, point in zip(mine, hashed, strict=True):
        assert item.value.encode() not in query
        assert item.encoded() not in query
        assert hashlib.sha256(item.encoded()).digest() not in query
        assert point not in query  # not even the unblinded group element
    assert len(query) == 4 + 4 + 16 + 8 + 50 * 32 + 8  # header, blob, empty known-set blob


def test_each_session_blinds_with_a_fresh_secret() -> None:
    mine = items(["a.example", "b.example"])
    one = Requester(mine, mode=Mode.INTERSECTION, partner="fr").start()
    two = Requester(mine, mode=Mode.INTERSECTION, partner="fr").start()
    assert set(_group.split(one.elements)).isdisjoint(_group.split(two.elements))
    assert one.session_id != two.session_id


def test_a_prepared_set_is_reused_and_not_resent() -> None:
    theirs = items([f"{i}.example" for i in range(300)])
    resp = responder(theirs)
    digest = SetDigest.from_bytes(resp.prepare("us").to_bytes())  # cached across restarts
    req = Requester(items(["5.example", "nope.example"]), mode="intersection", partner="fr",
                    known=digest)  # fmt: skip
    query = req.start()
    assert query.known_set == digest.set_id
    answer = resp.answer(query, partner="us")
    assert answer.digest is None  # the requester holds it already
    result = req.finish(answer)
    assert result.items == (Item("domain-name", "5.example"),)


def test_a_stale_digest_is_replaced_by_the_responders_current_one() -> None:
    theirs = items(["a.example", "b.example"])
    resp = responder(theirs)
    old = resp.prepare("us")
    resp.forget("us")
    req = Requester(items(["a.example"]), mode="intersection", partner="fr", known=old)
    answer = resp.answer(req.start(), partner="us")
    assert answer.digest is not None
    assert req.finish(answer).count == 1
    assert req.digest is not None and req.digest.set_id != old.set_id


def test_pointer_boxes_open_only_for_the_matching_item() -> None:
    theirs = items(["a.example", "b.example", "c.example"])
    resp = responder(theirs)
    result, _, req = run_session(items(["b.example", "zz.example"]), resp, Mode.POINTER)
    assert result.pointers is not None and len(result.pointers) == 1
    assert resp.resolve(req.session_id, result.pointers[0].handle) == Pointer(
        "op-b.example", "duty-officer@fr.example")


def test_both_sides_record_sizes_and_counts_never_items() -> None:
    mine, theirs = items(["x.example", "y.example"]), items(["y.example", "z.example", "w.e"])
    resp = responder(theirs)
    _, _, req = run_session(mine, resp, Mode.CARDINALITY)
    rec, theirs_rec = req.record, resp.records[-1]
    assert (rec.role, rec.outcome, rec.local_size, rec.remote_size, rec.matches) == (
        Role.REQUESTER, Outcome.COMPLETED, 2, 3, 1,
    )  # fmt: skip
    assert (theirs_rec.role, theirs_rec.local_size, theirs_rec.remote_size) == (
        Role.RESPONDER, 3, 2,
    )  # fmt: skip
    assert theirs_rec.matches == 1  # the responder compares, so it learns the count too
    for record in (rec, theirs_rec):
        text = repr(record.to_dict())
        assert "example" not in text and record.session_id == req.session_id.hex()


def test_mutual_records_on_both_sides_carry_the_count() -> None:
    resp = responder(items(["p", "q"]))
    _, _, req = run_session(items(["q", "r"]), resp, Mode.MUTUAL)
    assert req.record.matches == 1 and resp.records[-1].matches == 1
    assert [r.outcome for r in resp.records] == [Outcome.PENDING, Outcome.COMPLETED]


def test_alignment_cardinality_between_declared_operations_and_common_threats() -> None:
    from detente.deconflict import name

    common = [name("threat-actor", n) for n in ["ISIS", "Al-Nusra Front", "Khorasan Group"]]
    declared = [name("threat-actor", n) for n in ["isis", "  al-nusra   FRONT ", "PKK"]]
    result, _, _ = run_session(declared, responder(common), Mode.CARDINALITY)
    assert result.count == 2 and result.items is None  # "the same fight, up to a point"


def test_calls_outside_the_mode_are_refused() -> None:
    req = Requester(items(["a"]), mode=Mode.INTERSECTION, partner="fr")
    resp = responder(items(["a"]))
    answer = resp.answer(req.start(), partner="us")
    with pytest.raises(WrongModeError):
        req.reveal(answer)
    with pytest.raises(WrongModeError):
        Requester([], mode=Mode.INTERSECTION, partner="fr")


def test_pointer_mode_is_refused_when_not_offered() -> None:
    from detente.deconflict import MemoryBudgetBook, Responder

    plain = Responder(items(["a"]), book=MemoryBudgetBook())
    query = Requester(items(["a"]), mode=Mode.POINTER, partner="fr").start()
    with pytest.raises(WrongModeError, match="pointer mode"):
        plain.answer(query, partner="us")
    assert plain.records[-1].outcome is Outcome.REFUSED


def test_messages_keep_the_query_shape_on_the_wire() -> None:
    query = Requester(items(["a", "b", "c"]), mode=Mode.MUTUAL, partner="fr").start()
    back = QueryMessage.from_bytes(query.to_bytes())
    assert back == query and back.count == 3 and back.mode is Mode.MUTUAL
    assert pointers_for([]) == {}


def test_a_cached_digest_refuses_corruption() -> None:
    data = responder(items(["a", "b"])).prepare("us").to_bytes()
    with pytest.raises(ProtocolError):
        SetDigest.from_bytes(data[:-1])
    with pytest.raises(ProtocolError, match="not a version-2"):
        SetDigest.from_bytes(b"XXXX" + data[4:])


def test_empty_responder_set_gives_an_empty_result() -> None:
    """A responder with nothing to match against answers 'no match', never crashes."""
    from detente.deconflict import MemoryBudgetBook, Requester, Responder, observable

    requester = Requester(observable("ipv4-addr", "192.0.2.1"), mode="intersection",
                          partner="us")
    responder = Responder((), book=MemoryBudgetBook())
    result = requester.finish(responder.answer(requester.start(), partner="us"))
    assert result.count == 0 and not result.items
