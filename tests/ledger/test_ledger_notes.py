"""Entries, checkpoints and cosignatures: formats, and refusal of tampered input."""

from __future__ import annotations

import base64
import hashlib
import struct
from datetime import UTC, datetime

import pytest
import rfc8785
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from tests.ledger.ledger_fixtures import key, make_entry

from detente.errors import DetenteError
from detente.ledger import (
    Checkpoint,
    CheckpointError,
    Cosignature,
    Entry,
    EntryError,
    SignatureError,
    format_vkey,
    parse_vkey,
)

ROOT = hashlib.sha256(b"root").digest()


# -- entries -------------------------------------------------------------------------------


def test_entry_encodes_as_rfc8785_and_round_trips() -> None:
    entry = make_entry(3)
    assert entry.canonical == rfc8785.dumps(entry.to_dict())
    assert entry.leaf_hash == hashlib.sha256(b"\x00" + entry.canonical).digest()
    assert Entry.from_json(entry.canonical) == entry
    assert entry.to_dict()["v"] == 1


@given(st.integers(min_value=1, max_value=2**20), st.binary(min_size=32, max_size=32))
def test_a_release_batch_entry_encodes_as_rfc8785(size: int, root: bytes) -> None:
    entry = Entry(kind="release-batch", time="2026-01-01T00:00:00.000Z", partner="fr",
                  batch_root=root.hex(), batch_size=size)
    assert entry.canonical == rfc8785.dumps(entry.to_dict())
    assert Entry.from_json(entry.canonical) == entry


def test_entry_time_from_datetime_is_normalised_to_utc_milliseconds() -> None:
    when = datetime(2025, 3, 4, 5, 6, 7, 891234, tzinfo=UTC)
    assert Entry(kind="receipt", time=when).time == "2025-03-04T05:06:07.891Z"
    with pytest.raises(EntryError, match="timezone-aware"):
        Entry(kind="receipt", time=datetime(2025, 1, 1))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "Release"}, "lowercase tag"),
        ({"time": "2025-13-40T00:00:00Z"}, "real date"),
        ({"time": "yesterday"}, "RFC 3339"),
        ({"object_id": "indicator-1"}, "STIX id"),
        ({"view_hash": "ABCD"}, "view_hash"),
        ({"partner": ""}, "non-empty"),
        ({"partner": "a\nb"}, "control"),
        ({"object_version": 5}, "timestamp string"),
        ({"batch_root": "ab" * 32}, "go together"),
        ({"batch_root": "AB" * 32, "batch_size": 2}, "batch_root"),
        ({"batch_root": "ab" * 32, "batch_size": 0}, "batch_size"),
        ({"batch_root": "ab" * 32, "batch_size": True}, "batch_size"),
        ({"batch_root": "ab" * 32, "batch_size": 2**21}, "batch_size"),
    ],
)
def test_entry_refuses_bad_fields(fields: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"kind": "release", "time": "2025-01-01T00:00:00Z"}
    with pytest.raises(EntryError, match=message):
        Entry(**(base | fields))  # type: ignore[arg-type]


def test_checks_once_passed_are_remembered_but_still_refuse_what_fails() -> None:
    """Kind, time and partner are remembered once valid (entries of one batch share
    them); a bad value, or an unhashable one, is still refused with an EntryError."""
    base: dict[str, object] = {"kind": "receipt", "time": "2025-01-01T00:00:00Z",
                               "partner": "fr"}
    Entry(**base)  # type: ignore[arg-type]
    Entry(**base)  # type: ignore[arg-type]
    bad: list[tuple[dict[str, object], str]] = [
        ({"kind": ["receipt"]}, "lowercase tag"),
        ({"partner": ["fr"]}, "non-empty string"),
        ({"partner": "fr\x00"}, "control"),
        ({"kind": "Receipt"}, "lowercase tag")]
    for fields, message in bad:
        with pytest.raises(EntryError, match=message):
            Entry(**(base | fields))  # type: ignore[arg-type]


def test_every_field_set_is_encoded() -> None:
    entry = Entry(kind="release", time="2025-01-01T00:00:00Z", partner="fr",
                  object_id="indicator--11111111-2222-4333-8444-555555555555",
                  object_version="2025-01-01T00:00:00.000Z", view_hash="ab" * 32,
                  fingerprint_id="fp--1", detail="d", batch_root="cd" * 32, batch_size=3)
    assert set(entry.to_dict()) == set(Entry.__dataclass_fields__) - {"canonical"} | {"v"}
    assert Entry.from_json(entry.canonical) == entry


_TIMES = st.sampled_from(["2025-01-01T00:00:00Z", "2025-01-01T00:00:00.123Z",
                          "2025-13-01T00:00:00Z", "2025-01-01T00:00:00.1234567890Z",
                          "yesterday", ""])
_IDS = st.sampled_from(["indicator--11111111-2222-4333-8444-555555555555", "indicator-1",
                        "Indicator--11111111-2222-4333-8444-555555555555", ""])


_GOOD = {"time": "2025-01-01T00:00:00.123Z", "partner": "fr",
         "object_id": "indicator--11111111-2222-4333-8444-555555555555",
         "object_version": "2024-04-06T20:03:48.000Z", "view_hash": "ab" * 32}


@settings(max_examples=400, deadline=None)
@example(**_GOOD)
@example(**(_GOOD | {"object_version": None, "partner": "feed:ü\u2028"}))
@example(**(_GOOD | {"time": "2025-01-01T00:00:00Z", "partner": "new-partner"}))
@given(time=_TIMES, partner=st.sampled_from(["fr", "feed:osint", "", "a\nb", "x" * 257])
       | st.text(max_size=8), object_id=_IDS,
       object_version=st.none() | _TIMES | st.integers(), view_hash=st.sampled_from(
           ["ab" * 32, "AB" * 32, "ab" * 31, ""]) | st.binary(min_size=32, max_size=32).map(
           lambda b: b.hex()))
def test_a_receipt_is_the_entry_the_constructor_builds(
        time: str, partner: str, object_id: str, object_version: object,
        view_hash: str) -> None:
    """Entry.receipt (the intake path's) makes the checks, the entry and the bytes of
    Entry(kind="receipt", ...): both refuse the same input with the same message."""
    fields = {"time": time, "partner": partner, "object_id": object_id,
              "object_version": object_version, "view_hash": view_hash}
    try:
        general = Entry(kind="receipt", **fields)  # type: ignore[arg-type]
    except EntryError as exc:
        with pytest.raises(EntryError) as refused:
            Entry.receipt(**fields)  # type: ignore[arg-type]
        assert refused.value.message == exc.message
        return
    event("accepted")
    fast = Entry.receipt(**fields)  # type: ignore[arg-type]
    assert fast == general and fast.canonical == general.canonical
    assert fast.to_dict() == general.to_dict() and repr(fast) == repr(general)
    assert Entry.from_json(fast.canonical) == fast


def test_entry_from_json_refuses_non_canonical_and_unknown() -> None:
    data = make_entry(1).to_dict()
    with pytest.raises(EntryError, match="canonical"):
        Entry.from_json(b" " + rfc8785.dumps(data))
    with pytest.raises(EntryError, match="unknown fields"):
        Entry.from_json(rfc8785.dumps(data | {"extra": 1}))
    with pytest.raises(EntryError, match="format"):
        Entry.from_json(rfc8785.dumps(data | {"v": 2}))
    with pytest.raises(EntryError, match="JSON"):
        Entry.from_json(b"\xff")


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=300)
    | st.dictionaries(st.text(max_size=12), st.text(max_size=20)).map(
        lambda d: rfc8785.dumps({"v": 1, "kind": "x", "time": "2025-01-01T00:00:00Z", **d})
    )
)
def test_entry_parsing_of_anything_raises_only_entry_errors(data: bytes) -> None:
    try:
        entry = Entry.from_json(data)
    except EntryError:
        return
    assert entry.canonical == data  # anything accepted is canonical and round-trips


# -- checkpoints ---------------------------------------------------------------------------


def test_checkpoint_note_format_and_key_hash() -> None:
    signer = key(7)
    cp = Checkpoint.sign("us.example/ledger", 42, ROOT, signer, "us.example/ledger")
    note = cp.to_note()
    body, sig_line = note.split("\n\n")
    assert body + "\n" == f"us.example/ledger\n42\n{base64.b64encode(ROOT).decode()}\n"
    assert sig_line.startswith("— us.example/ledger ") and sig_line.endswith("\n")
    blob = base64.b64decode(sig_line.split(" ")[2])
    expected = hashlib.sha256(b"us.example/ledger\n\x01" + bytes(signer.verify_key)).digest()[:4]
    assert blob[:4] == expected and len(blob) == 4 + 64
    signer.verify_key.verify(cp.body.encode(), blob[4:])
    parsed = Checkpoint.from_note(note, {"us.example/ledger": signer.verify_key})
    assert parsed.same_tree(cp) and parsed.to_note() == note


def test_checkpoint_without_a_known_valid_signature_is_refused() -> None:
    signer, other = key(7), key(8)
    note = Checkpoint.sign("o", 5, ROOT, signer, "us").to_note()
    with pytest.raises(SignatureError, match="no signature by a known key"):
        Checkpoint.from_note(note, {"us": other.verify_key})
    with pytest.raises(SignatureError, match="no signature by a known key"):
        Checkpoint.from_note(note, {})
    tampered = note.replace("\n5\n", "\n6\n", 1)
    with pytest.raises(SignatureError, match="invalid"):
        Checkpoint.from_note(tampered, {"us": signer.verify_key})
    other_root = note.replace(base64.b64encode(ROOT).decode(), base64.b64encode(bytes(32)).decode())
    with pytest.raises(SignatureError, match="invalid"):
        Checkpoint.from_note(other_root, {"us": signer.verify_key})


@pytest.mark.parametrize(
    ("note", "message"),
    [
        ("o\n5\nAAAA\n", "blank line"),
        ("o\n5\n\n— us AAAAAAA=\n", "fewer than three"),
        ("o\n05\nAAAA\n\n— us AAAAAAA=\n", "decimal"),
        ("o\n5\n!!\n\n— us AAAAAAA=\n", "base64"),
        ("o\n5\nAAAA\n\n— us AAAAAAA=\n", "32-byte"),
        ("o\n5\n" + base64.b64encode(ROOT).decode() + "\n\n- us AAAAAAA=\n", "'— '"),
        ("o\n5\n" + base64.b64encode(ROOT).decode() + "\n\n— us AAAAAAA=", "newline"),
        ("o\t\n5\n", "control"),
    ],
)
def test_malformed_checkpoints_raise_checkpoint_errors(note: str, message: str) -> None:
    signer = key(1)
    with pytest.raises(CheckpointError, match=message):
        Checkpoint.from_note(note, {"us": signer.verify_key})


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_parsing_any_text_raises_only_domain_errors(text: str) -> None:
    try:
        Checkpoint.from_note(text, {"us": key(1).verify_key})
    except DetenteError as exc:
        assert exc.message
    else:
        raise AssertionError("random text can not carry a valid signature")


def test_cosignature_format_and_verification() -> None:
    signer, witness = key(1), key(2)
    cp = Checkpoint.sign("o", 9, ROOT, signer, "us")
    cosig = Cosignature.create(cp, witness, "fr-witness", timestamp=1_700_000_000)
    blob = base64.b64decode(cosig.line.split(" ")[2])
    expected = hashlib.sha256(b"fr-witness\n\x04" + bytes(witness.verify_key)).digest()[:4]
    assert blob[:4] == expected and len(blob) == 4 + 8 + 64
    assert struct.unpack(">Q", blob[4:12])[0] == 1_700_000_000
    message = b"cosignature/v1\ntime 1700000000\n" + cp.body.encode()
    witness.verify_key.verify(message, blob[12:])
    cosigned = Checkpoint.from_note(cp.with_cosignature(cosig).to_note(), {"us": signer.verify_key})
    [found] = cosigned.cosignatures({"fr-witness": witness.verify_key})
    assert found.timestamp == 1_700_000_000
    other = Checkpoint.sign("o", 10, ROOT, signer, "us")
    with pytest.raises(SignatureError, match="invalid"):
        cosig.verify(other, witness.verify_key)
    with pytest.raises(SignatureError, match="key hash"):
        cosig.verify(cp, signer.verify_key)


def test_verifier_keys_round_trip() -> None:
    vkey = format_vkey("us", key(3).verify_key)
    assert parse_vkey(vkey) == ("us", key(3).verify_key)
    name, hash_hex, blob = vkey.split("+")
    with pytest.raises(SignatureError, match="does not match"):
        parse_vkey(f"fr+{hash_hex}+{blob}")
    with pytest.raises(CheckpointError, match="base64"):
        parse_vkey(f"{name}+{hash_hex}+@@")
