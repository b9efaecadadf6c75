"""Coalition deconfliction between live nodes over the signed HTTP channels: each participant
learns exactly its own over-threshold items, every run is in every ledger (never items),
budgets apply per participant and at the reconstructor, and deviating requests — of an
initiator lying about roles, of a reconstructor trying to take part with items — are
refused and recorded. ``desk`` reconstructs at T = 3 and holds no items in the run."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests.cli.helpers import run
from tests.federation.fed_fixtures import put
from tests.federation.live import Federation, federation

from detente.deconflict import BudgetExceeded, Item, observable
from detente.deconflict.coalition import RunSpec, new_run
from detente.errors import ValidationError
from detente.federation.psi.coalition import coalition_runs, run_coalition
from detente.federation.psi.remote import ItemsSpec
from detente.federation.psi.sets import own_set
from detente.node import Node

pytestmark = pytest.mark.live

NAMES = ("de", "desk", "fr", "ru", "us")
PARTICIPANTS = ("de", "fr", "ru", "us")
RAQQA_C2 = "198.51.100.77"
# who holds which addresses: .77 by fr, ru, us; .1-.5 by fr and ru; .6 by de and fr; rest alone
HOLDINGS = {
    "fr": [RAQQA_C2, *(f"198.51.100.{i}" for i in range(1, 7)), "203.0.113.9"],
    "ru": [RAQQA_C2, *(f"198.51.100.{i}" for i in range(1, 6)), "203.0.113.10"],
    "de": ["198.51.100.6", "203.0.113.11"],
}
US = [RAQQA_C2, "198.51.100.6", "198.51.100.200", "203.0.113.12"]


def sco(value: str) -> dict[str, Any]:
    return {"type": "ipv4-addr", "spec_version": "2.1", "id": f"ipv4-addr--{uuid.uuid4()}",
            "value": value}


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[Federation]:
    with federation(tmp_path, NAMES) as f:
        for name, values in HOLDINGS.items():
            put(f.nodes[name], *[sco(v) for v in values], release=False)
        yield f


def ips(values: list[str]) -> ItemsSpec:
    return ItemsSpec("observables", tuple(i for v in values for i in observable("ipv4-addr", v)))


def truth(threshold: int) -> dict[str, set[str]]:
    sets = {**HOLDINGS, "us": US}
    held = Counter(v for s in sets.values() for v in set(s))
    return {n: {f"ipv4-addr:{v}" for v in s if held[v] >= threshold} for n, s in sets.items()}


def coalition_records(node: Node) -> list[dict[str, Any]]:
    out = []
    for _i, e in node.ledger.entries():
        if e.kind == "deconfliction":
            doc = orjson.loads(e.detail or "{}")
            if doc.get("role") == "coalition":
                out.append(doc)
    return out


def test_every_participant_learns_exactly_its_over_threshold_items(fed: Federation) -> None:
    us = fed.nodes["us"]
    for threshold in (2, 3):
        got = run_coalition(us, ["de", "fr", "ru"], threshold, ips(US),
                            reconstructor="desk" if threshold == 3 else None)
        want = truth(threshold)
        assert set(got.matched) == want["us"]
        assert got.sizes == {"de": 2, "fr": 8, "ru": 7, "us": 4} and got.capacity == 8
        for name in ("de", "fr", "ru"):  # each learned its own, kept for its operator only
            latest = coalition_runs(fed.nodes[name], 1)[0]
            assert latest["run_id"] == got.spec.run_id.hex()
            assert set(latest["matched"]) == want[name]
    for name, node in fed.nodes.items():
        records = coalition_records(node)
        runs = 1 if name == "desk" else 2  # desk took part in the T = 3 run only
        assert [r["outcome"] for r in records] == ["completed"] * runs
        assert all(r["participants"] == list(PARTICIPANTS) for r in records)
        text = " ".join(e.detail or "" for _i, e in node.ledger.entries())
        assert "198.51.100" not in text and "203.0.113" not in text  # never items


def test_pointer_mode_names_only_co_holders(fed: Federation) -> None:
    got = run_coalition(fed.nodes["us"], ["de", "fr", "ru"], 3, ips(US), mode="pointer",
                        reconstructor="desk")
    c2, six = f"ipv4-addr:{RAQQA_C2}", "ipv4-addr:198.51.100.6"
    assert set(got.matched) == {c2, six} == truth(3)["us"]
    assert {p.node for p in got.pointers[c2]} == {"fr", "ru"}
    assert {p.node for p in got.pointers[six]} == {"de", "fr"}
    assert all(p.handle.startswith("h-") for ps in got.pointers.values() for p in ps)
    fr = coalition_runs(fed.nodes["fr"], 1)[0]
    assert set(fr["pointers"]) == {c2, six}  # .1-.5 are held by two: T = 3 hides them
    assert {p["node"] for p in fr["pointers"][c2]} == {"ru", "us"}
    ru = coalition_runs(fed.nodes["ru"], 1)[0]  # ru never learns that de and fr share .6
    assert set(ru["pointers"]) == {c2}
    assert {p["node"] for p in ru["pointers"][c2]} == {"fr", "us"}


def test_operations_only_in_pointer_mode(fed: Federation) -> None:
    spec = ItemsSpec.operations_json([{
        "name": "strike", "latitude": 35.95, "longitude": 39.0, "radius_m": 100,
        "start": "2025-11-20T08:00:00Z", "end": "2025-11-20T09:00:00Z"}])
    with pytest.raises(ValidationError, match="not offered in coalition membership mode"):
        run_coalition(fed.nodes["us"], ["fr", "ru"], 2, spec)


def test_budgets_apply_per_participant(fed: Federation,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    fr = fed.nodes["fr"]
    r = run(capsys, "deconflict", "budget", "us", "--items", "3", "--home", str(fr.home))
    assert r.code == 0
    with pytest.raises(BudgetExceeded) as refused:
        run_coalition(fed.nodes["us"], ["fr", "ru"], 2, ips(US))
    assert refused.value.reason == "items_per_query"
    assert coalition_records(fed.nodes["us"])[-1]["outcome"] == "aborted"
    assert any(r["outcome"] == "refused" for r in coalition_records(fr))
    # ru's list is within its own budget at fr: a run among fr, ru and de still completes
    got = run_coalition(fed.nodes["ru"], ["de", "fr"], 2, ips(HOLDINGS["ru"]))
    assert len(got.matched) == 6


def _post(client: httpx.Client, path: str, body: bytes, **params: str) -> httpx.Response:
    return client.post(path, content=body, params=params,
                       headers={"Content-Type": "application/octet-stream"})


def test_deviating_requests_are_refused(fed: Federation) -> None:
    spec = new_run("us", ["fr", "ru"], 2, "observables")
    target = "ru" if spec.reconstructor == "fr" else "fr"  # a participant that is not R
    path = f"/deconflict/coalition/{spec.run_id.hex()}"
    body = orjson.dumps({"spec": spec.to_json()})
    with fed.raw("de", target) as client:  # de starts a run in us's name
        assert _post(client, f"{path}/join", body).status_code == 403
    with fed.raw("us", target) as client:
        assert _post(client, f"{path}/join", body).status_code == 200
        assert _post(client, f"{path}/join", body).status_code == 400  # replayed join
        assert _post(client, f"{path}/open", b"", capacity="8").status_code == 404  # not R
        assert _post(client, f"{path}/key", b"").status_code == 404
        assert _post(client, f"{path}/go", b"", capacity="8").status_code == 400  # order
        assert _post(client, f"{path}/blinded", b"").status_code == 200
        assert _post(client, f"{path}/blinded", b"").status_code == 400  # twice
    with fed.raw("de", target) as client:  # not a participant of this run
        assert _post(client, f"{path}/raise", b"\x00" * 32).status_code == 403
    peer = spec.reconstructor
    with fed.raw(peer, target) as client:
        bad = _post(client, f"{path}/raise", b"\x01" * 32)  # not a group element
        assert bad.status_code == 400 and "ristretto255" in bad.text
        assert _post(client, f"{path}/result", b"x").status_code == 400  # only the relay
    other = RunSpec(b"\x02" * 16, "us", ("fr", "us"), 2, "observables")
    with fed.raw("us", target) as client:
        wrong = _post(client, f"{path}/join", orjson.dumps({"spec": other.to_json()}))
        assert wrong.status_code == 400 and "does not match" in wrong.text
    stranger = new_run("us", ["fr", "it"], 2, "observables")  # "it" is not fr's partner
    with fed.raw("us", "fr") as client:
        unknown = _post(client, f"/deconflict/coalition/{stranger.run_id.hex()}/join",
                        orjson.dumps({"spec": stranger.to_json()}))
        assert unknown.status_code == 404 and "it" in unknown.text
    refused = [r for r in coalition_records(fed.nodes[target]) if r["outcome"] == "refused"]
    assert refused and "ristretto255" in refused[0]["reason"]


def test_cli(fed: Federation, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mine = tmp_path / "us.json"
    mine.write_bytes(orjson.dumps([{"type": "ipv4-addr", "value": v} for v in US]))
    us = str(fed.nodes["us"].home)
    r = run(capsys, "deconflict", "--with", "fr", "--with", "ru", "--with", "de",
            "--threshold", "3", "--observables", str(mine), "--home", us, "--json")
    assert r.code == 2 and "--reconstructor NODE" in r.err  # fail closed, naming the option
    r = run(capsys, "deconflict", "--with", "fr", "--with", "ru", "--with", "de",
            "--threshold", "3", "--reconstructor", "fr", "--observables", str(mine),
            "--home", us)
    assert r.code == 2 and "also a participant" in r.err
    r = run(capsys, "deconflict", "--with", "fr", "--with", "ru", "--with", "de",
            "--threshold", "3", "--reconstructor", "desk", "--observables", str(mine),
            "--home", us, "--json")
    assert r.code == 0, r.err
    doc = orjson.loads(r.out)
    assert {f"ipv4-addr:{v}" for v in doc["matched"]} == truth(3)["us"]
    assert doc["threshold"] == 3 and doc["reconstructor"] == "desk" and doc["relay"] == "us"
    assert doc["reconstructor_holds_items"] is False
    r = run(capsys, "deconflict", "--with", "fr", "--with", "ru", "--threshold", "2",
            "--observables", str(mine), "--home", us)
    assert r.code == 0, r.err
    assert RAQQA_C2 in r.out and "198.51.100.200" not in r.out
    said = " ".join(r.out.split())  # the console wraps lines
    assert "reconstructed by fr:" in said or "reconstructed by ru:" in said  # drawn, T = 2
    r = run(capsys, "deconflict", "--home", us, "--with", "fr", "--threshold", "3",
            "--observables", str(mine))
    assert r.code == 1 and "threshold 3" in r.err
    assert own_set(fed.nodes["fr"], "observables").items  # fr's own set was used
    assert Item("ipv4-addr", RAQQA_C2) in own_set(fed.nodes["fr"], "observables").items


# -- the reconstructor that holds no items --------------------------------------------------


def test_a_non_holding_reconstructor_reads_no_set_and_records_only_that_it_reconstructed(
        fed: Federation) -> None:
    """desk holds 198.51.100.1 (fr and ru hold it too: three with desk) yet its set is never
    read: at T = 3 the address stays below the threshold for fr and ru. desk's ledger says
    it reconstructed — run, roles, how many over-threshold groups — and names no item; it
    keeps no result."""
    desk = fed.nodes["desk"]
    put(desk, sco("198.51.100.1"), release=False)
    got = run_coalition(fed.nodes["us"], ["de", "fr", "ru"], 3, ips(US),
                        reconstructor="desk")
    assert set(got.matched) == truth(3)["us"]
    fr = coalition_runs(fed.nodes["fr"], 1)[0]
    assert "ipv4-addr:198.51.100.1" not in fr["matched"] and set(fr["matched"]) == truth(3)["fr"]
    [entry] = coalition_records(desk)
    assert entry["reconstructed"] is True and entry["holds_items"] is False
    assert entry["local_size"] is None and entry["matches"] is None
    assert entry["groups"] == 2  # .77 (fr, ru, us) and .6 (de, fr, us): no item named
    assert entry["outcome"] == "completed" and entry["session_id"] == got.spec.run_id.hex()
    assert all("198.51.100" not in (e.detail or "") for _i, e in desk.ledger.entries())
    assert coalition_runs(desk) == []
    for name in PARTICIPANTS:
        mine = coalition_records(fed.nodes[name])[-1]
        assert mine["reconstructed"] is False and mine["reconstructor"] == "desk"


def _join(client: httpx.Client, doc: dict[str, Any]) -> httpx.Response:
    return client.post(f"/deconflict/coalition/{doc['run_id']}/join",
                       content=orjson.dumps({"spec": doc}),
                       headers={"Content-Type": "application/json"})


def test_an_initiator_lying_about_roles_is_refused_by_each_participant(
        fed: Federation) -> None:
    """us (deviating) hands fr a T = 3 spec whose reconstructor holds items, or names none,
    or names us itself: fr refuses each before reading its set, and records the refusal."""
    honest = new_run("us", ["fr", "ru"], 3, "observables", reconstructor="desk").to_json()
    lies = [{**honest, "reconstructor": "ru"},
            {k: v for k, v in honest.items() if k != "reconstructor"},
            {**honest, "reconstructor": "us"}]
    with fed.raw("us", "fr") as client:
        for doc in lies:
            refused = _join(client, doc)
            assert refused.status_code == 400, refused.text
            assert "--reconstructor NODE" in refused.text
        assert _join(client, honest).status_code == 200
    records = coalition_records(fed.nodes["fr"])
    assert [r["outcome"] for r in records] == ["refused"] * 3
    assert all("run spec" in r["reason"] and r["initiator"] == "us" for r in records)


def test_a_reconstructor_is_given_no_items_and_takes_no_part_with_items(
        fed: Federation) -> None:
    """desk, named R, is asked (by a deviating initiator) for its list, a ring step, an
    upload and a result: each aborts the run there. desk, deviating, asks participants to
    raise a list of its own: refused (it holds no items in the run). A spec naming desk
    both holder and reconstructor is refused by desk itself."""
    spec = new_run("us", ["fr", "ru"], 3, "observables", reconstructor="desk")
    path = f"/deconflict/coalition/{spec.run_id.hex()}"
    both = {**spec.to_json(), "participants": ["desk", "fr", "ru", "us"]}
    with fed.raw("us", "desk") as client:
        assert _join(client, both).status_code == 400  # a holder may not reconstruct at T=3
        joined = _join(client, spec.to_json())
        assert joined.status_code == 200 and joined.json() == {"role": "reconstructor"}
        asked = _post(client, f"{path}/blinded", b"")
        assert asked.status_code == 400 and "holds no items in it" in asked.text
        assert _post(client, f"{path}/key", b"").status_code == 404  # the run is gone
    desk = coalition_records(fed.nodes["desk"])
    assert desk[-1]["outcome"] == "aborted" and "no list here" in desk[-1]["reason"]
    for step, body, params in (("go", b"", {"capacity": "8"}), ("result", b"x", {}),
                               ("raise", b"\x00" * 32, {})):
        again = new_run("us", ["fr", "ru"], 3, "observables", reconstructor="desk")
        with fed.raw("us", "desk") as client:
            assert _join(client, again.to_json()).status_code == 200
        sender = "ru" if step == "raise" else "us"
        with fed.raw(sender, "desk") as client:
            r = _post(client, f"/deconflict/coalition/{again.run_id.hex()}/{step}", body,
                      **params)
            assert r.status_code == 400 and "holds no items in it" in r.text, (step, r.text)
        assert coalition_records(fed.nodes["desk"])[-1]["outcome"] == "aborted"
    with fed.raw("us", "fr") as client:
        assert _join(client, spec.to_json()).status_code == 200
    with fed.raw("desk", "fr") as client:  # desk tries to get tags for items of its own
        r = _post(client, f"{path}/raise", b"\x00" * 32)
        assert r.status_code == 403 and "holds no items in this run" in r.text
        assert _post(client, f"{path}/key", b"").status_code == 403


def test_the_reconstructor_applies_its_budget_to_the_initiator(
        fed: Federation, capsys: pytest.CaptureFixture[str]) -> None:
    desk = str(fed.nodes["desk"].home)
    assert run(capsys, "deconflict", "budget", "us", "--items", "4", "--home", desk).code == 0
    with pytest.raises(BudgetExceeded) as big:  # capacity 8 > 4 items per query
        run_coalition(fed.nodes["us"], ["de", "fr", "ru"], 3, ips(US), reconstructor="desk")
    assert big.value.reason == "items_per_query"
    assert coalition_records(fed.nodes["desk"])[-1]["outcome"] == "aborted"
    assert run(capsys, "deconflict", "budget", "us", "--queries", "1", "--items", "100",
               "--home", desk).code == 0
    with pytest.raises(BudgetExceeded) as daily:  # the first run used today's one query
        run_coalition(fed.nodes["us"], ["de", "fr", "ru"], 3, ips(US), reconstructor="desk")
    assert daily.value.reason == "queries_per_day"
    assert coalition_records(fed.nodes["desk"])[-1]["outcome"] == "refused"
    assert coalition_records(fed.nodes["us"])[-1]["outcome"] == "aborted"
    with pytest.raises(ValidationError, match="needs a reconstructor that holds no items"):
        run_coalition(fed.nodes["us"], ["de", "fr", "ru"], 3, ips(US))
