"""Private RFIs between live nodes (issue 20 §2): ``rfi ask --private --observable V``
reaches only the partners that hold V, decided by PSI; a partner that does not hold V
receives nothing, and its TAXII view is exactly what it was before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.cli.helpers import run
from tests.federation.fed_fixtures import indicator, put
from tests.federation.live import Federation, federation, pull

from detente.errors import DetenteError
from detente.policy.releasability import releasability_marking
from detente.release import release_pending
from detente.store import Query
from detente.usecases.rfi import ask_private, observable_items

pytestmark = pytest.mark.live

V = "domain-name:amaq-relay.example"
ROOT = "/taxii2/api1"
COLLECTION = f"{ROOT}/collections/releases"


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[Federation]:
    with federation(tmp_path, ("us", "fr", "ru", "de")) as f:
        yield f


def _own(fed: Federation, node: str, pattern: str) -> dict[str, Any]:
    obj = indicator("green", pattern=pattern)
    put(fed.nodes[node], obj, release=False)
    return obj


def _notes(fed: Federation, node: str) -> list[dict[str, Any]]:
    return [o.body for o in fed.nodes[node].store.iter_all(Query(types=("note",)))]


def _view(fed: Federation, who: str, probe_ids: list[str]) -> list[Any]:
    """Everything ``who`` can read of us over TAXII: collections, the collection, its
    manifest and objects (all versions), and each id in ``probe_ids`` asked for directly."""
    out: list[Any] = []
    with fed.raw(who, "us") as c:
        for path, params in ((f"{ROOT}/collections/", {}), (f"{COLLECTION}/", {}),
                             (f"{COLLECTION}/manifest/", {"match[version]": "all"}),
                             (f"{COLLECTION}/objects/", {"match[version]": "all"}),
                             (f"{COLLECTION}/objects/", {"match[type]": "note"}),
                             (f"{COLLECTION}/objects/",
                              {"match[type]": "marking-definition"})):
            r = c.get(path, params=params)
            out.append((path, r.status_code, r.json(),
                        {k: v for k, v in r.headers.items() if k.lower().startswith("x-taxii")}))
        for i, oid in enumerate(probe_ids):
            r = c.get(f"{COLLECTION}/objects/{oid}/")
            body = r.json()
            out.append((r.status_code, str(body.get("description", body)).replace(
                oid, f"<{i}>")))
    return out


@pytest.mark.parametrize("mode", ["pointer", "intersection"])
def test_a_private_rfi_reaches_only_the_partner_that_holds_the_observable(
    fed: Federation, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    us, fr, ru = fed.nodes["us"], fed.nodes["fr"], fed.nodes["ru"]
    _own(fed, "fr", "[domain-name:value = 'AMAQ-relay.example.']")  # same item, other spelling
    _own(fed, "ru", "[domain-name:value = 'other.example']")
    _own(fed, "de", "[ipv4-addr:value = '198.51.100.77']")
    put(us, indicator("green", pattern="[ipv4-addr:value = '203.0.113.9']"))  # shared before
    for name in ("fr", "ru", "de"):
        pull(fed.nodes[name], "us")
    missing = "note--00000000-0000-4000-8000-000000000000"
    before = {n: _view(fed, n, [missing, missing]) for n in ("ru", "de")}

    r = run(capsys, "rfi", "ask", "--private", "--observable", V, "--psi-mode", mode,
            "Who registered this relay?", "--deadline", "2031-01-31",
            "--home", str(us.home), "--json")
    assert r.code == 0, r.err
    done = orjson.loads(r.out)
    assert done["holders"] == ["fr"] and set(done["rfis"]) == {"fr"}
    assert {p["partner"]: p["holds"] for p in done["probes"]} == {
        "fr": True, "ru": False, "de": False}
    rfi_id = done["rfis"]["fr"]
    release_pending(us.releaser)
    for name in ("fr", "ru", "de"):
        pull(fed.nodes[name], "us")

    # the holder has the question, about V, marked releasable to it alone
    (theirs,) = fr.rfis.all()
    assert theirs.note.id == rfi_id and not theirs.ours
    assert theirs.body["x_detente_observable"] == "domain-name:amaq-relay.example"
    assert ("x_detente_pointer" in theirs.body) == (mode == "pointer")
    r = run(capsys, "rfi", "show", rfi_id, "--home", str(fr.home))
    assert "asked only of holders of domain-name:amaq-relay.example" in r.out
    # nobody else has anything: no note, and a view identical to before
    assert _notes(fed, "ru") == [] and _notes(fed, "de") == [] and ru.rfis.all() == []
    for name in ("ru", "de"):
        assert _view(fed, name, [rfi_id, missing]) == before[name], name
    # the PSI sessions are in both ledgers, without the observable
    for node, partner in ((us, "ru"), (ru, "us")):
        sessions = [e for _i, e in node.ledger.entries() if e.kind == "deconfliction"
                    and e.partner == partner]
        assert sessions and all("amaq" not in (e.detail or "") for e in sessions)
    # France answers; the answer is credited like any other
    r = run(capsys, "rfi", "answer", rfi_id, "--text", "A reseller in Gaziantep.",
            "--home", str(fr.home), "--json")
    assert r.code == 0, r.err
    release_pending(fr.releaser)
    pull(us, "fr")
    assert [c[1] for c in us.rfis.credited("fr")] == [rfi_id]


def test_each_holder_gets_its_own_rfi_naming_it_alone(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    """A marking naming both holders would tell each that the other holds V (its id is a
    hash of the audience, which a holder can recompute for every guess)."""
    us = fed.nodes["us"]
    _own(fed, "fr", "[domain-name:value = 'amaq-relay.example']")
    _own(fed, "de", "[domain-name:value = 'amaq-relay.example'] OR "
                    "[ipv4-addr:value = '198.51.100.1']")
    _own(fed, "ru", "[domain-name:value = 'other.example']")
    r = run(capsys, "rfi", "ask", "--private", "--observable",
            "[domain-name:value = 'amaq-relay.example']", "--to", "fr", "--to", "de",
            "Who registered this relay?", "--home", str(us.home), "--json")
    assert r.code == 0, r.err
    done = orjson.loads(r.out)
    assert done["holders"] == ["fr", "de"] and [p["partner"] for p in done["probes"]] == [
        "fr", "de"]  # ru, not named, was not even queried
    assert not [e for _i, e in fed.nodes["ru"].ledger.entries() if e.kind == "deconfliction"]
    release_pending(us.releaser)
    seen = {}
    for name in ("fr", "de"):
        node = fed.nodes[name]
        pull(node, "us")
        (note,) = _notes(fed, name)
        alone = releasability_marking(releasable_to=[node.identity_id], onward="denied",
                                      created_by_ref=us.identity_id)
        assert alone["id"] in note["object_marking_refs"]
        seen[name] = note["id"]
    assert seen["fr"] != seen["de"] and seen == done["rfis"]


def test_an_undecided_partner_is_not_asked(fed: Federation) -> None:
    """Fail closed: a session that fails (here: de has no observables, so it refuses)
    decides nothing and that partner receives nothing."""
    us = fed.nodes["us"]
    _own(fed, "fr", "[domain-name:value = 'amaq-relay.example']")

    def failing(node: Any, partner: str, mode: str, spec: Any) -> Any:
        raise DetenteError(f"{partner} is unreachable")

    from detente.federation.psi.remote import run_query

    done = ask_private(us, "q", V, to=["fr", "de"])
    assert done.holders == ["fr"]
    (de,) = [p for p in done.probes if p.partner == "de"]
    assert de.holds is None and "no observables" in (de.error or "")
    done = ask_private(us, "q", V, to=["fr"], query=failing)
    assert done.holders == [] and done.rfis == {} and done.probes[0].holds is None
    assert run_query is not failing
    release_pending(us.releaser)
    pull(fed.nodes["de"], "us")
    assert _notes(fed, "de") == []


def test_private_rfi_mistakes(fed: Federation, capsys: pytest.CaptureFixture[str]) -> None:
    home = str(fed.nodes["us"].home)
    for args in (("--private", "q"),  # no observable
                 ("--observable", V, "q", "--to", "fr"),  # observable without --private
                 ("--private", "--observable", "amaq.example", "q"),  # no TYPE:
                 ("--private", "--observable", "domain-name:", "q"),
                 ("--private", "--observable", "ipv4-addr:10.0.0.0/24", "q"),  # 256 items
                 ("--private", "--observable", "[domain-name:value LIKE 'a%']", "q"),
                 ("--private", "--observable", V, "--psi-mode", "cardinality", "q"),
                 ("--private", "--observable", V, "--marking", "purple", "q")):
        r = run(capsys, "rfi", "ask", *args, "--home", home)
        assert r.code == 2, (args, r.out, r.err)
    r = run(capsys, "rfi", "ask", "--private", "--observable", V, "q", "--to", "nobody",
            "--home", home)
    assert r.code == 1 and "nobody" in r.err
    # nothing was queried for any of these
    assert not [e for _i, e in fed.nodes["us"].ledger.entries() if e.kind == "deconfliction"]
    assert observable_items("file:sha256:" + "A" * 64)[0].kind == "file:SHA-256"


class _Liar:
    """A partner's deconfliction service that does not hold V but claims every query
    matches: in pointer mode it opens one of its own boxes for the first element of the
    reveal (it compares, so nothing stops it); in intersection mode it can only answer
    honestly — we compare there, and it cannot compute b·H(V) without our secret."""

    def __init__(self) -> None:
        from detente.deconflict import MemoryBudgetBook, Pointer, Responder

        mine = observable_items("domain-name:other.example")
        self.responder = Responder(mine, book=MemoryBudgetBook(),
                                   pointers={i: Pointer("obj-1", "desk@ru") for i in mine})

    def post_bytes(self, path: str, body: bytes, params: Any = None) -> bytes:
        from detente.deconflict import (
            Mode,
            OpeningMessage,
            QueryMessage,
            RevealMessage,
            parse_message,
        )
        from detente.deconflict import _group as group

        msg = parse_message(body)
        if isinstance(msg, QueryMessage):
            return self.responder.answer(msg, partner="us").to_bytes()
        assert isinstance(msg, RevealMessage)
        box_scalar = self.responder._pending[msg.session_id].box_scalar
        self.responder.conclude(msg, partner="us")  # the honest count is 0
        forged = group.multiply(box_scalar, group.split(msg.elements)[0])
        return OpeningMessage(msg.session_id, forged, 1, Mode.POINTER).to_bytes()

    def close(self) -> None:
        pass


@pytest.mark.parametrize("mode", ["pointer", "intersection"])
def test_a_lying_non_holder_gets_the_question_in_pointer_mode_only(
        fed: Federation, mode: str) -> None:
    """The limit docs/rfi.md states: in pointer mode the responder's count is taken on
    trust, so a partner that claims to hold V receives the RFI; intersection mode is not
    fooled by the same partner."""
    from detente.federation.psi.remote import run_query

    us = fed.nodes["us"]

    def lied_to(node: Any, partner: str, m: str, spec: Any) -> Any:
        return run_query(node, partner, m, spec, client=_Liar())  # type: ignore[arg-type]

    done = ask_private(us, "Who registered it?", V, to=["ru"], mode=mode, query=lied_to)
    assert done.holders == (["ru"] if mode == "pointer" else [])
