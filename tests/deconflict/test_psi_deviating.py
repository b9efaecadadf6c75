"""A partner that does not follow the protocol (issue 18): each attack is performed here.

The requester is the deviating party unless said otherwise. Every test drives the attack
through the library's messages, as a partner would over HTTP; on protocol version 1 the
per-item blinding, linking and commitment attacks succeeded (12/12 matches identified from one
cardinality session, prepared-set values linkable across sessions, membership decided from
the mutual commitment at step 2, pointer handles stable across sessions).
"""

from __future__ import annotations

import hashlib
import math
import secrets

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.deconflict.psi_helpers import items, responder, run_session

from detente.deconflict import (
    Item,
    Mode,
    OpeningMessage,
    Outcome,
    ProtocolError,
    QueryMessage,
    Requester,
    Responder,
    ResponseMessage,
    RevealMessage,
    WrongModeError,
    _group,
)
from detente.deconflict.prepared import box_id, box_index, open_box

THEIRS = items([f"target-{i}.example" for i in range(100)])
MINE = items([f"target-{i}.example" for i in range(88, 100)]  # 12 of ours are theirs
             + [f"other-{i}.example" for i in range(48)])  # fmt: skip
MATCHED = set(MINE) & set(THEIRS)


class PerItemAttacker:
    """A requester that blinds each item with its own scalar (the attack of issue 18 §1)."""

    def __init__(self, mine: list[Item], mode: Mode) -> None:
        self.items = mine
        self.mode = mode
        self.sid = secrets.token_bytes(16)
        self.scalars = [_group.random_scalar() for _ in mine]
        points = _group.split(_group.hash_to_group([i.encoded() for i in mine]))
        self.query = QueryMessage(self.sid, mode, b"".join(
            _group.multiply(a, p) for a, p in zip(self.scalars, points, strict=True)))

    def unblind_everything(self, received: bytes) -> dict[int, set[bytes]]:
        """Every element received, unblinded with every one of our scalars (n² work)."""
        out: dict[int, set[bytes]] = {}
        for i, a in enumerate(self.scalars):
            out[i] = set(_group.split(_group.multiply(_group.invert(a), received)))
        return out


@pytest.mark.parametrize("mode", [Mode.CARDINALITY, Mode.POINTER])
def test_per_item_blinding_gets_nothing_to_unblind(mode: Mode) -> None:
    resp = responder(THEIRS)
    attacker = PerItemAttacker(MINE, mode)
    response = resp.answer(attacker.query, partner="us")
    # version 1 answered b·a_i·H(x_i) (shuffled) with the tags of b·H(y): trying every a_i⁻¹
    # on every element named the 12 matches. Now nothing derived from the query comes back:
    assert response.elements == b"" and response.digest is None
    doubled = _group.split(resp._pending[attacker.sid].doubled)  # b·a_i·H(x_i): kept here
    assert set(doubled).isdisjoint(_group.split(response.peer_elements))
    assert not any(d in response.to_bytes() for d in doubled)
    # what it did receive, b·H(y) under a fresh key in a fresh order, unblinded with every
    # a_i⁻¹ (its n² step), meets nothing: the only elements under b it could hold are ours
    for values in attacker.unblind_everything(response.peer_elements).values():
        assert values.isdisjoint(doubled)
        assert values.isdisjoint(_group.split(response.peer_elements))


@pytest.mark.parametrize("mode", [Mode.CARDINALITY, Mode.POINTER])
def test_per_item_blinding_learns_one_singleton_at_most(mode: Mode) -> None:
    """The attacker's best continuation: bind its reveal to one item's scalar. The count then
    answers "is item 0 theirs?" and nothing about the 11 other matches it holds."""
    for target in (0, 20):  # item 0 is theirs, item 20 is not
        resp = responder(THEIRS)
        attacker = PerItemAttacker(MINE, mode)
        response = resp.answer(attacker.query, partner="us")
        a = attacker.scalars[target]
        reveal = RevealMessage(attacker.sid, _group.shuffled(
            _group.multiply(a, response.peer_elements)), mode)
        _, opening = resp.conclude(reveal, partner="us")
        assert opening.count == int(MINE[target] in MATCHED)
        if mode is Mode.POINTER:
            keys = _group.split(_group.multiply(_group.invert(a), opening.elements))
            boxes = box_index(response.boxes)
            opened = [open_box(boxes[box_id(k)], k) for k in keys]
            assert len(opened) == opening.count <= 1


def test_an_honest_query_still_counts_all_twelve() -> None:
    result, theirs, _ = run_session(MINE, responder(THEIRS), Mode.CARDINALITY)
    assert result.count == 12 and theirs is not None and theirs.count == 12


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(assignment=st.lists(st.integers(0, len(MINE) - 1), min_size=100, max_size=100))
def test_any_mix_of_per_item_scalars_counts_one_item_per_position(assignment: list[int]) -> None:
    """Whatever scalar the attacker puts on each position of its reveal, the count is the
    number of positions whose item it guessed: each of our items is tested at most once and
    by one of its items, in an order it cannot know (fresh key, fresh shuffle)."""
    resp = responder(THEIRS)
    attacker = PerItemAttacker(MINE, Mode.CARDINALITY)
    response = resp.answer(attacker.query, partner="us")
    order = resp._pending[attacker.sid].order  # our secret order of the elements we sent
    peer = _group.split(response.peer_elements)
    reveal = b"".join(_group.multiply(attacker.scalars[g], r)
                      for g, r in zip(assignment, peer, strict=True))  # fmt: skip
    _, opening = resp.conclude(RevealMessage(attacker.sid, reveal, Mode.CARDINALITY), partner="us")
    assert opening.count == sum(order[j] == MINE[g] for j, g in enumerate(assignment))
    assert opening.count <= len({g for j, g in enumerate(assignment) if order[j] == MINE[g]})


def test_weighting_an_item_needs_more_elements_than_we_accept() -> None:
    """Counting one item twice needs it under two scalars at every position: 2·|R| elements."""
    resp = responder(THEIRS)
    attacker = PerItemAttacker(MINE, Mode.CARDINALITY)
    response = resp.answer(attacker.query, partner="us")
    doubled = b"".join(_group.multiply(a, response.peer_elements) for a in attacker.scalars[:2])
    with pytest.raises(ProtocolError, match="200 elements for our 100"):
        resp.conclude(RevealMessage(attacker.sid, doubled, Mode.CARDINALITY), partner="us")
    assert resp.records[-1].outcome is Outcome.ABORTED


def test_one_reveal_per_session() -> None:
    """A second reveal (a second count from one charged query) is refused."""
    resp = responder(THEIRS)
    req = Requester(MINE, mode=Mode.CARDINALITY, partner="fr")
    reveal = req.reveal(resp.answer(req.start(), partner="us"))
    resp.conclude(reveal, partner="us")
    with pytest.raises(ProtocolError, match="no session of this mode is waiting"):
        resp.conclude(reveal, partner="us")


def test_a_reveal_with_invalid_elements_is_refused() -> None:
    resp = responder(THEIRS)
    req = Requester(MINE, mode=Mode.CARDINALITY, partner="fr")
    reveal = req.reveal(resp.answer(req.start(), partner="us"))
    bad = reveal.elements[:32] + b"\xff" * 32 + reveal.elements[64:]
    with pytest.raises(ProtocolError, match="element 1 is not a valid"):
        resp.conclude(RevealMessage(reveal.session_id, bad, Mode.CARDINALITY), partner="us")


def _linking_attack(resp: Responder, mine: list[Item]) -> set[bytes]:
    """Issue 18 §4: the full set, then ⌈log₂ n⌉ subsets by index bit. In version 1 the
    unblinded answers b·H(x) were the same in every session under a prepared key, so the
    subsets a value reappeared in spelled its item's index. Returns the values that
    reappear in every session (what the linking needs)."""
    n = len(mine)
    subsets = [list(range(n))] + [[i for i in range(n) if i >> b & 1]
                                  for b in range(math.ceil(math.log2(n)))]  # fmt: skip
    seen: list[set[bytes]] = []
    for subset in subsets:
        req = Requester([mine[i] for i in subset], mode=Mode.CARDINALITY, partner="fr")
        response = resp.answer(req.start(), partner="us")
        seen.append(set(_group.split(response.peer_elements)))
        resp.conclude(req.reveal(response), partner="us")
    return set.intersection(*seen)


def test_linking_queries_find_no_stable_value() -> None:
    resp = responder(THEIRS)
    resp.prepare("us")  # a prepared set no longer serves cardinality or pointer sessions
    mine = MINE[:16]
    assert _linking_attack(resp, mine) == set()
    req = Requester(mine, mode=Mode.INTERSECTION, partner="fr", known=resp.prepare("us"))
    query = req.start()
    with pytest.raises(ProtocolError, match="cardinality mode does not use prepared sets"):
        QueryMessage(query.session_id, Mode.CARDINALITY, query.elements, query.known_set)


def test_pointer_handles_are_fresh_per_session() -> None:
    resp = responder(THEIRS)
    one, _, req1 = run_session(MINE, resp, Mode.POINTER)
    two, _, req2 = run_session(MINE, resp, Mode.POINTER)
    assert one.pointers is not None and two.pointers is not None
    assert len(one.pointers) == len(two.pointers) == 12
    assert {p.handle for p in one.pointers}.isdisjoint({p.handle for p in two.pointers})
    back1 = {resp.resolve(req1.session_id, p.handle) for p in one.pointers}
    back2 = {resp.resolve(req2.session_id, p.handle) for p in two.pointers}
    assert back1 == back2 and None not in back1  # only the responder can map them back
    assert resp.resolve(req2.session_id, next(iter(one.pointers)).handle) is None


def test_a_pointer_match_that_opens_no_box_aborts_the_requester() -> None:
    """A lying responder cannot hand the requester a pointer it did not seal."""
    resp = responder(THEIRS)
    req = Requester(MINE, mode=Mode.POINTER, partner="fr")
    reveal = req.reveal(resp.answer(req.start(), partner="us"))
    _, opening = resp.conclude(reveal, partner="us")
    forged = _group.multiply(_group.random_scalar(), opening.elements)
    with pytest.raises(ProtocolError, match="opens none"):
        req.conclude(OpeningMessage(opening.session_id, forged, opening.count, Mode.POINTER))
    assert req.record.outcome is Outcome.ABORTED


def test_mutual_commitment_cannot_be_tested_at_step_2() -> None:
    """Issue 18 §2: with one item, the version-1 requester computed a·b·H(y) for every
    element the responder sent and hashed each against the commitment: a hit meant
    membership, before it had revealed anything. The salt makes every guess miss."""
    resp = responder(THEIRS)
    mine = [THEIRS[42]]
    req = Requester(mine, mode=Mode.MUTUAL, partner="fr")
    response = resp.answer(req.start(), partner="us")
    candidates = _group.split(_group.multiply(req._secret, response.peer_elements))
    for person in (b"dpsi1-commit", b"dpsi2-commit"):
        guesses = {hashlib.blake2b(req.session_id + c, digest_size=32, person=person).digest()
                   for c in candidates}  # fmt: skip
        assert response.commitment not in guesses
    # the committed value *was* among the candidates: the attack had the right input
    _, opening = resp.conclude(req.reveal(response), partner="us")
    assert opening.elements in candidates and opening.count == 1


def test_a_mutual_session_abandoned_after_step_2_is_recorded_aborted() -> None:
    resp = responder(THEIRS)
    req = Requester([THEIRS[1]], mode=Mode.MUTUAL, partner="fr")
    resp.answer(req.start(), partner="us")
    assert resp.records[-1].outcome is Outcome.PENDING and resp.pending
    (record,) = resp.abandon(req.session_id)
    assert record.outcome is Outcome.ABORTED and record.partner == "us"
    assert "abandoned" in (record.reason or "") and not resp.pending
    with pytest.raises(ProtocolError):  # too late to come back
        resp.conclude(req.reveal(ResponseMessage(
            req.session_id, Mode.MUTUAL, 0, commitment=b"c" * 32)), partner="us")


@pytest.mark.parametrize("mode", [Mode.INTERSECTION, Mode.MUTUAL, Mode.CARDINALITY])
def test_modes_outside_the_responders_policy_are_refused(mode: Mode) -> None:
    resp = responder(THEIRS, modes={Mode.POINTER})
    req = Requester(MINE, mode=mode, partner="fr")
    with pytest.raises(WrongModeError, match=f"not offered in {mode} mode"):
        resp.answer(req.start(), partner="us")
    assert resp.records[-1].outcome is Outcome.REFUSED


def test_a_reveal_in_another_mode_aborts_the_session() -> None:
    resp = responder(THEIRS)
    req = Requester(MINE, mode=Mode.CARDINALITY, partner="fr")
    reveal = req.reveal(resp.answer(req.start(), partner="us"))
    as_mutual = RevealMessage(reveal.session_id, reveal.elements, Mode.MUTUAL)
    with pytest.raises(ProtocolError, match="reveal is for mutual mode, the session is"):
        resp.conclude(as_mutual, partner="us")
    assert resp.records[-1].outcome is Outcome.ABORTED and not resp.pending
    with pytest.raises(ProtocolError, match="no session"):
        resp.conclude(reveal, partner="us")  # the session is over
