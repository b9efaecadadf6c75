"""`detente credit` (issue 20 §4): per partner, what it gave us, each item with the ledger
entry that proves it — which the partner can read from our ledger itself."""

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


def test_credit_lists_each_item_with_its_ledger_proof(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    us, fr, ru = fed.nodes["us"], fed.nodes["fr"], fed.nodes["ru"]
    first = indicator("green", name="C2 first seen by France",
                      pattern="[ipv4-addr:value = '198.51.100.31']")
    put(fr, first)
    pull(us, "fr")  # France first ...
    put(ru, indicator("green", name="Russia's own sighting",
                      pattern="[ipv4-addr:value = '198.51.100.31']"))
    pull(us, "ru")  # ... independently corroborated by Russia
    r = run(capsys, "rfi", "ask", "Any more Raqqa relays?", "--to", "fr",
            "--home", str(us.home), "--json")
    rfi_id = orjson.loads(r.out)["id"]
    release_pending(us.releaser)
    pull(fr, "us")
    assert run(capsys, "rfi", "answer", rfi_id, "--text", "None seen since November.",
               "--home", str(fr.home)).code == 0
    release_pending(fr.releaser)
    pull(us, "fr")
    r = run(capsys, "credit", "--partner", "fr", "--home", str(us.home), "--json")
    assert r.code == 0, r.err
    (line,) = orjson.loads(r.out)
    assert line["partner"] == "fr" and line["first_reports"] >= 1
    assert line["corroborated"] >= 1 and line["rfi_answers"] == 1
    kinds = {p["what"]: p for p in line["proofs"]}
    assert set(kinds) == {"first report", "rfi-answer"}
    receipt = us.ledger.entry(kinds["first report"]["ledger_index"])
    assert receipt.kind == "receipt" and receipt.partner == "fr"
    assert receipt.object_id == first["id"]
    answer = us.ledger.entry(kinds["rfi-answer"]["ledger_index"])
    assert answer.kind == "rfi-answer" and answer.partner == "fr"
    # France reads those very entries in full from our ledger, and nobody else's
    with fed.client("fr", "us") as client:
        doc = client.get_json("/ledger/entries", {"start": 0, "limit": 1000})
    mine = {row["index"] for row in doc["entries"] if row.get("entry")}
    assert {kinds["first report"]["ledger_index"],
            kinds["rfi-answer"]["ledger_index"]} <= mine
    assert line["rfi_answers_confirmed"] == 0
    # a second answer offers France's own report; once we confirm that report, the answer
    # counts as confirmed (the first, text only, never can)
    r = run(capsys, "rfi", "ask", "Who runs 198.51.100.31?", "--to", "fr",
            "--home", str(us.home), "--json")
    second = orjson.loads(r.out)["id"]
    release_pending(us.releaser)
    pull(fr, "us")
    assert run(capsys, "rfi", "answer", second, "--with", first["id"],
               "--home", str(fr.home)).code == 0
    release_pending(fr.releaser)
    pull(us, "fr")
    r = run(capsys, "credit", "--partner", "fr", "--home", str(us.home), "--json")
    (line,) = orjson.loads(r.out)
    assert line["rfi_answers"] == 2 and line["rfi_answers_confirmed"] == 0
    assert run(capsys, "evidence", "confirm", first["id"], "--why", "seen on our sensors",
               "--home", str(us.home)).code == 0
    r = run(capsys, "credit", "--partner", "fr", "--home", str(us.home), "--json")
    (line,) = orjson.loads(r.out)
    assert line["rfi_answers"] == 2 and line["rfi_answers_confirmed"] == 1
    r = run(capsys, "credit", "--home", str(us.home))
    assert r.code == 0 and "fr" in r.out and "ru" in r.out and "ledger leaf" in r.out
    r = run(capsys, "credit", "--partner", "nobody", "--home", str(us.home))
    assert r.code == 1
