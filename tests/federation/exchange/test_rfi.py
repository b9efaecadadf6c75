"""Requests for information between live nodes (issue 20 §2): an RFI reaches only the
partners it names, the answer only the asker, and the asker's ledger credits the answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from tests.cli.helpers import run
from tests.federation.fed_fixtures import indicator, put
from tests.federation.live import Federation, federation, pull

from detente.release import release_pending

pytestmark = pytest.mark.live


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[Federation]:
    with federation(tmp_path) as f:
        yield f


def _notes(fed: Federation, node: str) -> dict[str, dict[str, object]]:
    from detente.store import Query

    return {o.id: o.body for o in fed.nodes[node].store.iter_all(Query(types=("note",)))}


def test_an_rfi_reaches_only_the_partners_it_names_and_answers_are_credited(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    us, fr, ru = fed.nodes["us"], fed.nodes["fr"], fed.nodes["ru"]
    r = run(capsys, "rfi", "ask", "Who runs the Amaq media office?", "--to", "fr",
            "--deadline", "2031-01-31", "--home", str(us.home), "--json")
    assert r.code == 0, r.err
    rfi_id = orjson.loads(r.out)["id"]
    release_pending(us.releaser)
    pull(fr, "us")
    pull(ru, "us")
    assert rfi_id in _notes(fed, "fr") and rfi_id not in _notes(fed, "ru")
    (theirs,) = fr.rfis.all()
    assert not theirs.ours and theirs.deadline == "2031-01-31T00:00:00Z"
    # France answers with an object it holds, and a sentence
    actor = indicator("green", name="Amaq media office relay",
                      pattern="[domain-name:value = 'amaq.example']")
    put(fr, actor, release=False)
    r = run(capsys, "rfi", "answer", rfi_id, "--with", str(actor["id"]), "--text",
            "Run from Raqqa; see the relay domain.", "--home", str(fr.home), "--json")
    assert r.code == 0, r.err
    answer_id = orjson.loads(r.out)["id"]
    release_pending(fr.releaser)
    pull(us, "fr")
    pull(ru, "fr")
    assert answer_id in _notes(fed, "us") and answer_id not in _notes(fed, "ru")
    assert us.store.get(str(actor["id"])) is not None  # the object offered, under policy
    (ours,) = us.rfis.all()
    assert ours.ours and [a.id for a in ours.answers] == [answer_id]
    (credit,) = us.rfis.credited("fr")
    assert credit[:3] == (answer_id, rfi_id, "fr")
    entry = us.ledger.entry(credit[3])
    assert entry.kind == "rfi-answer" and entry.partner == "fr" and entry.object_id == answer_id
    pull(us, "fr")  # pulled again: credited once
    assert len(us.rfis.credited("fr")) == 1
    r = run(capsys, "rfi", "show", rfi_id, "--home", str(us.home))
    assert "Run from Raqqa" in r.out and str(actor["id"]) in r.out
    # closing is a new version the asked partner receives
    assert run(capsys, "rfi", "close", rfi_id, "--home", str(us.home)).code == 0
    release_pending(us.releaser)
    pull(fr, "us")
    assert fr.rfis.get(rfi_id).closed
    r = run(capsys, "rfi", "list", "--home", str(fr.home), "--json")
    assert orjson.loads(r.out)[0]["closed"] is True


def test_rfi_mistakes(fed: Federation, capsys: pytest.CaptureFixture[str]) -> None:
    us, fr = fed.nodes["us"], fed.nodes["fr"]
    home = str(us.home)
    for args, code in ((("ask", "q", "--to", "fr", "--deadline", "soonish"), 2),
                       (("ask", "q", "--to", "fr", "--marking", "purple"), 2),
                       (("ask", "  ", "--to", "fr"), 2),
                       (("ask", "q", "--to", "nobody"), 1),
                       (("ask", "q"), 2),
                       (("show", "note--00000000-0000-4000-8000-000000000000"), 1)):
        r = run(capsys, "rfi", *args, "--home", home)
        assert r.code == code, (args, r.out, r.err)
    r = run(capsys, "rfi", "ask", "q", "--to", "fr", "--home", home, "--json")
    rfi_id = orjson.loads(r.out)["id"]
    r = run(capsys, "rfi", "answer", rfi_id, "--text", "x", "--home", home)
    assert r.code == 1 and "our own RFI" in r.err
    release_pending(us.releaser)
    pull(fr, "us")
    red = indicator("red")
    put(fr, red, release=False)
    r = run(capsys, "rfi", "answer", rfi_id, "--with", str(red["id"]), "--home", str(fr.home))
    assert r.code == 1 and "does not release" in r.err  # nothing TLP:RED offered
    r = run(capsys, "rfi", "answer", rfi_id, "--home", str(fr.home))
    assert r.code != 0
    r = run(capsys, "rfi", "close", rfi_id, "--home", str(fr.home))
    assert r.code == 1 and "only its author" in r.err
