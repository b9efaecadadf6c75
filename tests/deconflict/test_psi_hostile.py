"""Hostile messages: malformed, truncated, replayed or out-of-order input aborts the session
with a named :class:`ProtocolError`, never a bare KeyError/ValueError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.deconflict.psi_helpers import items, responder

from detente.deconflict import (
    DeconflictError,
    Mode,
    OpeningMessage,
    Outcome,
    ProtocolError,
    QueryMessage,
    ReplayError,
    Requester,
    ResponseMessage,
    RevealMessage,
    UnsupportedVersion,
    _group,
    parse_message,
)

MINE = items(["a.example", "b.example", "c.example"])
THEIRS = items(["b.example", "c.example", "d.example", "e.example"])


def _exchange(mode: Mode = Mode.INTERSECTION) -> tuple[Requester, QueryMessage, ResponseMessage]:
    req = Requester(MINE, mode=mode, partner="fr")
    query = req.start()
    return req, query, responder(THEIRS).answer(query, partner="us")


def _all_messages() -> list[bytes]:
    _, query, response = _exchange(Mode.POINTER)
    mreq, mquery, mresponse = _exchange(Mode.MUTUAL)
    resp = responder(THEIRS)
    mresponse = resp.answer(mquery, partner="us")
    reveal = mreq.reveal(mresponse)
    _, opening = resp.conclude(reveal, partner="us")
    return [m.to_bytes() for m in (query, response, mresponse, reveal, opening)]


@pytest.mark.parametrize("index", range(5))
def test_every_truncation_of_every_message_is_refused(index: int) -> None:
    data = _all_messages()[index]
    assert parse_message(data).to_bytes() == data
    cuts = sorted({*range(0, 80), *range(len(data) - 40, len(data))})
    for cut in cuts:
        with pytest.raises(ProtocolError):
            parse_message(data[:cut])


@pytest.mark.parametrize("index", range(5))
def test_trailing_bytes_are_refused(index: int) -> None:
    with pytest.raises(ProtocolError, match="trailing"):
        parse_message(_all_messages()[index] + b"\x00")


def test_header_defects_are_named() -> None:
    data = bytearray(_exchange()[1].to_bytes())
    with pytest.raises(ProtocolError, match="magic"):
        parse_message(b"XPSI" + bytes(data[4:]))
    with pytest.raises(UnsupportedVersion, match="version 9"):
        parse_message(bytes(data[:4]) + b"\x09" + bytes(data[5:]))
    with pytest.raises(ProtocolError, match="unknown PSI message type 7"):
        parse_message(bytes(data[:5]) + b"\x07" + bytes(data[6:]))
    with pytest.raises(ProtocolError, match="unknown PSI mode tag 0"):
        parse_message(bytes(data[:6]) + b"\x00" + bytes(data[7:]))
    with pytest.raises(ProtocolError, match="must carry step 1, not 2"):
        parse_message(bytes(data[:7]) + b"\x02" + bytes(data[8:]))


def test_a_message_of_the_wrong_type_is_refused_by_from_bytes() -> None:
    _, query, _ = _exchange()
    with pytest.raises(ProtocolError, match="expected a ResponseMessage, got a QueryMessage"):
        ResponseMessage.from_bytes(query.to_bytes())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_ever_raise_domain_errors(data: bytes) -> None:
    for candidate in (data, b"DPSI\x01" + data, b"DPSI\x01\x02\x01\x02" + data):
        with contextlib.suppress(DeconflictError):  # anything else fails the test
            parse_message(candidate)


def test_invalid_group_elements_in_a_query_abort_with_the_index() -> None:
    _, query, _ = _exchange()
    bad = query.elements[:32] + b"\xff" * 32 + query.elements[64:]
    hostile = QueryMessage(query.session_id, query.mode, bad)
    resp = responder(THEIRS)
    with pytest.raises(ProtocolError, match="element 1 is not a valid ristretto255"):
        resp.answer(hostile, partner="us")
    assert resp.records[-1].outcome is Outcome.ABORTED


def test_a_query_repeating_an_element_is_refused() -> None:
    _, query, _ = _exchange()
    with pytest.raises(ProtocolError, match="repeats"):
        QueryMessage(query.session_id, query.mode, query.elements[:32] * 2)


def test_a_replayed_query_is_refused() -> None:
    req = Requester(MINE, mode=Mode.INTERSECTION, partner="fr")
    query = req.start()
    resp = responder(THEIRS)
    resp.answer(query, partner="us")
    with pytest.raises(ReplayError, match="already used"):
        resp.answer(QueryMessage.from_bytes(query.to_bytes()), partner="us")


def test_a_replayed_or_foreign_response_aborts_the_requester() -> None:
    req, _, response = _exchange()
    other, _, other_response = _exchange()
    with pytest.raises(ProtocolError, match="another session"):
        req.finish(other_response)
    assert req.record.outcome is Outcome.ABORTED
    with pytest.raises(ProtocolError, match="already over"):
        req.finish(response)  # an aborted session stays aborted
    other.finish(other_response)
    with pytest.raises(ProtocolError, match="already over"):
        other.finish(other_response)  # replay after completion


def test_out_of_order_messages_are_refused() -> None:
    req = Requester(MINE, mode=Mode.MUTUAL, partner="fr")
    resp = responder(THEIRS)
    early = OpeningMessage(req.session_id, b"\x00" * 32 * 3, 0, salt=b"s" * 32)
    with pytest.raises(ProtocolError, match="out of order"):
        req.conclude(early)  # before start()
    req2 = Requester(MINE, mode=Mode.MUTUAL, partner="fr")
    req2.start()
    with pytest.raises(ProtocolError, match="session already started"):
        req2.start()
    with pytest.raises(ProtocolError, match="no session of this mode is waiting"):
        resp.conclude(RevealMessage(req.session_id, b""), partner="us")


def test_a_response_of_the_wrong_length_aborts() -> None:
    req, _, response = _exchange()
    short = ResponseMessage(
        response.session_id, response.mode, response.responder_size, response.elements[:64],
        response.set_id, response.digest,
    )  # fmt: skip
    with pytest.raises(ProtocolError, match="2 elements for our 3"):
        req.finish(short)


def test_a_response_without_a_set_we_do_not_hold_aborts() -> None:
    req, _, response = _exchange()
    bare = ResponseMessage(
        response.session_id, response.mode, response.responder_size, response.elements,
        response.set_id, None,
    )  # fmt: skip
    with pytest.raises(ProtocolError, match="do not hold"):
        req.finish(bare)


def test_a_broken_commitment_opening_aborts_mutual_mode() -> None:
    req = Requester(MINE, mode=Mode.MUTUAL, partner="fr")
    resp = responder(THEIRS)
    response = resp.answer(req.start(), partner="us")
    _, opening = resp.conclude(req.reveal(response), partner="us")
    swapped = _group.split(opening.elements)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    forged = OpeningMessage(opening.session_id, b"".join(swapped), opening.count,
                            salt=opening.salt)  # fmt: skip
    with pytest.raises(ProtocolError, match="commitment"):
        req.conclude(forged)
    assert req.record.outcome is Outcome.ABORTED


def test_a_lying_match_count_in_the_opening_aborts() -> None:
    req = Requester(MINE, mode=Mode.MUTUAL, partner="fr")
    resp = responder(THEIRS)
    response = resp.answer(req.start(), partner="us")
    _, opening = resp.conclude(req.reveal(response), partner="us")
    liar = OpeningMessage(opening.session_id, opening.elements, opening.count - 1,
                          salt=opening.salt)  # fmt: skip
    with pytest.raises(ProtocolError, match="results disagree"):
        req.conclude(liar)


def test_a_reveal_from_another_partner_or_twice_is_refused() -> None:
    req = Requester(MINE, mode=Mode.MUTUAL, partner="fr")
    resp = responder(THEIRS)
    reveal = req.reveal(resp.answer(req.start(), partner="us"))
    with pytest.raises(ProtocolError, match="no session of this mode"):
        resp.conclude(reveal, partner="ru")
    resp.conclude(reveal, partner="us")
    with pytest.raises(ProtocolError, match="no session of this mode"):
        resp.conclude(reveal, partner="us")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"elements": b"\x01" * 31}, "whole number"),
        ({"elements": b""}, "no elements"),
        ({"session_id": b"short"}, "session id"),
        ({"known_set": b"x"}, "known set"),
    ],
)
def test_query_construction_validates(kwargs: dict[str, bytes], message: str) -> None:
    fields: dict[str, object] = {"session_id": b"s" * 16, "mode": Mode.INTERSECTION,
                                 "elements": b"\x01" * 32}  # fmt: skip
    fields.update(kwargs)
    with pytest.raises(ProtocolError, match=message):
        QueryMessage(**fields)  # type: ignore[arg-type]


def test_mutual_fields_in_a_lookup_response_are_refused() -> None:
    _, _, response = _exchange()
    with pytest.raises(ProtocolError, match="mutual-mode fields"):
        ResponseMessage(
            response.session_id, response.mode, response.responder_size, response.elements,
            response.set_id, response.digest, commitment=b"c" * 32,
        )  # fmt: skip
