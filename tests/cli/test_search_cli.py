"""`detente search` as a user drives it, on both backends, with real ATT&CK content."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pytest
from tests.cli.helpers import run
from tests.store.helpers import indicator

ATTACK = Path(__file__).resolve().parents[1] / "data" / "attack-ics-slice.json"


@pytest.fixture
def home(tmp_path: Path, store_url: str, capsys: pytest.CaptureFixture[str]) -> Path:
    h = tmp_path / "us"
    r = run(capsys, "init", "--home", str(h), "--name", "us", "--store", store_url)
    assert r.code == 0, r.err
    return h


def _ingest(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
            *bodies: dict[str, object]) -> None:
    f = tmp_path / f"in-{uuid.uuid4()}.json"
    f.write_bytes(orjson.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                                "objects": list(bodies)}))
    r = run(capsys, "ingest", str(f), "--home", str(home))
    assert r.code == 0, r.err


def test_search_by_value_prints_full_ids(home: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    bad = indicator(name="exfil host", pattern="[ipv4-addr:value = '198.51.100.23']")
    _ingest(home, tmp_path, capsys, bad, indicator(name="other"))
    r = run(capsys, "search", "198.51.100.23", "--home", str(home))
    assert r.code == 0, r.err
    assert bad["id"] in r.out and "exfil host" in r.out and "local" in r.out
    assert "…" not in r.out
    r = run(capsys, "search", "198.51.100.23", "--home", str(home), "--json")
    [hit] = orjson.loads(r.out)["results"]
    assert (hit["id"], hit["type"], hit["name"], hit["origin"]) == (
        bad["id"], "indicator", "exfil host", "local:import")  # a third party's (kept)
    # the id shown is the id `show` takes
    assert run(capsys, "show", hit["id"], "--home", str(home)).code == 0


def test_search_attack_ids_type_filter_and_paging(home: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    r = run(capsys, "ingest", str(ATTACK), "--home", str(home))
    assert r.code == 0, r.err
    bundle = orjson.loads(ATTACK.read_bytes())
    techniques = {o["id"]: o for o in bundle["objects"] if o["type"] == "attack-pattern"}
    tid, tech = next((ref["external_id"], o) for o in techniques.values()
                     for ref in o.get("external_references", [])
                     if ref.get("source_name") == "mitre-attack")
    r = run(capsys, "search", tid, "--home", str(home), "--json",
            "--type", "attack-pattern")
    assert r.code == 0, r.err
    assert tech["id"] in [h["id"] for h in orjson.loads(r.out)["results"]]
    first = orjson.loads(run(capsys, "search", "--type", "attack-pattern", "--limit", "3",
                             "--json", "--home", str(home)).out)
    second = orjson.loads(run(capsys, "search", "--type", "attack-pattern", "--limit", "3",
                              "--offset", "3", "--json", "--home", str(home)).out)
    assert first["more"] and len(first["results"]) == 3
    assert {h["id"] for h in first["results"]}.isdisjoint(h["id"] for h in second["results"])
    assert all(h["type"] == "attack-pattern" for h in first["results"] + second["results"])


def test_search_usage_errors_exit_2(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = run(capsys, "search", " ", "--home", str(home))
    assert r.code == 2 and "empty" in r.err
    r = run(capsys, "search", "!!!", "--home", str(home))
    assert r.code == 2 and "nothing to search for" in r.err
    r = run(capsys, "search", "x", "--limit", "0", "--home", str(home))
    assert r.code == 2
    assert "Traceback" not in r.err


def test_no_match_says_so(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = run(capsys, "search", "nothing-like-this.example", "--home", str(home))
    assert r.code == 0 and "no objects match" in r.err


def test_a_home_from_before_search_is_indexed_when_opened(
        home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sqlalchemy as sa

    from detente.node import Node

    old = indicator(name="from before search", pattern="[url:value = 'http://old.example/x']")
    _ingest(home, tmp_path, capsys, old)
    node = Node.open(home)
    with node.store.transaction() as conn:  # the tables as an older detente left them
        conn.execute(sa.text("DELETE FROM store_meta WHERE key = 'search_index'"))
        conn.execute(sa.text("DELETE FROM search_docs"))
    node.close()
    r = run(capsys, "search", "old.example", "--home", str(home), "--json")
    assert r.code == 0, r.err
    assert [h["id"] for h in orjson.loads(r.out)["results"]] == [old["id"]]
