"""Opinions between live nodes (issue 20 §1): our verdict on a partner's report goes, as a
STIX opinion, to its source and to every partner that received it through us — and to
nobody else; a refuted report is never relayed onward bare; partners' opinions are
evidence about them; a partner's opinion can be adopted as our verdict."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from tests.cli.helpers import run
from tests.federation.fed_fixtures import indicator
from tests.federation.live import Federation, federation, pull

from detente.errors import NotFoundError, ValidationError
from detente.federation.exchange.local import ingest_local
from detente.node import Node
from detente.release import release_pending
from detente.release.ids import object_in
from detente.release.schema import releases, views
from detente.settings import update_settings
from detente.store import Query
from detente.usecases.opinion import adopt, give_opinion, verdict

pytestmark = pytest.mark.live

ROOT = "/taxii2/api1/collections/releases/objects"


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[Federation]:
    with federation(tmp_path, ("us", "fr", "ru", "de")) as f:
        # de shares no community with the U.S.: TLP:GREEN material never reaches it
        f.nodes["us"].partners.update("de", communities=frozenset())
        yield f


def _report(fed: Federation, relayed_to: frozenset[str] = frozenset({"fr"})) -> str:
    """Russia's 'imminent attack' report: ru -> us, relayed by the U.S. to France only
    (unless told otherwise)."""
    ru, us = fed.nodes["ru"], fed.nodes["us"]
    lie = indicator("green", name="Imminent attack staging server",
                    labels=["imminent", "attack-planning"], confidence=95,
                    created_by_ref=ru.identity_id,
                    pattern=f"[ipv4-addr:value = '203.0.113.{uuid.uuid4().int % 200}']")
    assert not ingest_local(ru, [("lie", lie)]).rejected
    release_pending(ru.releaser, ["us"])
    pull(us, "ru")
    release_pending(us.releaser)
    pull(fed.nodes["fr"], "us")
    assert us.releaser.recipients_of(str(lie["id"])) == relayed_to
    return str(lie["id"])


def _opinions(node: Node) -> dict[str, dict[str, Any]]:
    return {o.id: o.body for o in node.store.iter_all(Query(types=("opinion",)))}


def _live(node: Node, partner: str, object_id: str) -> int:
    c = releases.c
    with node.store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(
            releases.join(views, c.view == views.c.id)).where(
            c.partner == partner, object_in(views.c, [object_id]),
            c.withdrawn.is_(False))).scalar_one())


def test_a_refutation_reaches_the_source_and_the_relayed_copy_is_withdrawn(
        fed: Federation, capsys: pytest.CaptureFixture[str]) -> None:
    us, fr, ru, de = (fed.nodes[n] for n in ("us", "fr", "ru", "de"))
    lie = _report(fed)
    assert _live(us, "fr", lie) == 1
    r = run(capsys, "evidence", "refute", lie, "--why", "No such server: the address is "
            "unused", "--home", str(us.home), "--json")
    assert r.code == 0, r.err
    out = orjson.loads(r.out)
    op = out["opinion"]
    assert sorted(op["to"]) == ["fr", "ru"] and op["value"] == "strongly-disagree"
    assert op["withdrawn"] == {"fr": 1}
    assert _live(us, "fr", lie) == 0  # never relayed onward bare
    release_pending(us.releaser)
    for node in (ru, fr, de):
        pull(node, "us")
    body = _opinions(ru)[op["opinion"]]
    assert body["object_refs"] == [lie] and body["created_by_ref"] == us.identity_id
    assert body["explanation"].startswith("No such server")
    assert op["opinion"] in _opinions(fr)
    assert op["opinion"] not in _opinions(de)
    # the withdrawn report is not released again, to France or to a partner that joins later
    (to_fr,) = [d for p, d in us.releaser.matrix(lie) if p.name == "fr"]
    assert not to_fr.allowed and "withheld from every partner" in to_fr.reasons[0]
    # Russia sees who disputes its report, and why
    (seen,) = ru.trust.opinions_about(lie)
    assert seen.said == "us disputes" and "unused" in seen.explanation
    r = run(capsys, "show", lie, "--home", str(ru.home))
    assert r.code == 0 and "us disputes" in r.err and "unused" in r.err


def test_an_opinion_about_an_object_a_partner_never_got_looks_like_nothing(
        fed: Federation) -> None:
    """de never received the report: asking for our opinion about it answers exactly as
    for an opinion that does not exist."""
    us = fed.nodes["us"]
    lie = _report(fed)
    _, result = verdict(us, lie, "refuted", "deceptive")
    assert result.opinion is not None and "de" not in result.audience
    release_pending(us.releaser)
    real, fake = result.opinion["id"], f"opinion--{uuid.uuid4()}"
    with fed.raw("de", "us") as client:
        answers = []
        for oid in (real, fake):
            for tail in ("/", "/versions/"):
                got = client.get(f"{ROOT}/{oid}{tail}")
                doc = orjson.loads(got.content.replace(oid.encode(), b"ID"))
                doc.pop("error_id", None)  # random per answer
                answers.append((got.status_code, doc))
        listing = client.get(f"{ROOT}/", params={"match[type]": "opinion"})
    assert answers[0] == answers[2] and answers[1] == answers[3]
    assert answers[0][0] == 404 and answers[1][0] == 404
    assert real.encode() not in listing.content
    # and France, which held it, does get it
    with fed.raw("fr", "us") as client:
        assert client.get(f"{ROOT}/{real}/").status_code == 200


def test_with_opinion_setting_keeps_recipients_and_adds_our_opinion(
        fed: Federation, capsys: pytest.CaptureFixture[str]) -> None:
    us = fed.nodes["us"]
    lie = _report(fed)
    update_settings(us.home, refuted_release="with-opinion")
    r = run(capsys, "evidence", "refute", lie, "--why", "deceptive", "--home", str(us.home),
            "--json")
    assert r.code == 0, r.err
    assert orjson.loads(r.out)["opinion"]["withdrawn"] == {}
    assert _live(us, "fr", lie) == 1  # France keeps it, with our opinion beside it
    again = Node.open(us.home)
    try:
        release_pending(again.releaser)
        decisions = {p.name: d for p, d in again.releaser.matrix(lie)}
        assert decisions["fr"].allowed and not decisions["de"].allowed
        assert "released only to the partners our opinion goes to" in \
            decisions["de"].reasons[0]
    finally:
        again.close()
    pull(fed.nodes["fr"], "us")
    assert any(b["object_refs"] == [lie] for b in _opinions(fed.nodes["fr"]).values())


@pytest.mark.parametrize("their_view, gains", [("strongly-disagree", True),
                                               ("agree", False)])
def test_partners_opinions_are_evidence_about_them(
        fed: Federation, their_view: str, gains: bool) -> None:
    """France gives its opinion on the report it got from us; the U.S. later refutes it:
    France's refutation was right (gains), its agreement wrong (loses)."""
    us, fr = fed.nodes["us"], fed.nodes["fr"]
    lie = _report(fed)
    mine = give_opinion(fr, lie, their_view, "our collection says otherwise")
    assert mine.audience == ("us",)  # France got it from the U.S. only
    release_pending(fr.releaser, ["us"])
    pull(us, "fr")
    (theirs,) = us.trust.opinions_about(lie)
    assert theirs.partner == "fr" and theirs.value == their_view
    before = us.trust.reliability("fr").mean
    verdict(us, lie, "refuted", "deceptive")
    after = us.trust.reliability("fr").mean
    assert (after > before) if gains else (after < before), (before, after)
    right, wrong, _ = us.trust.opinion_record("fr")
    assert (right, wrong) == ((1, 0) if gains else (0, 1))


def test_peers_resolve_an_opinion_before_our_verdict(fed: Federation) -> None:
    """Without a verdict of ours, another partner's agreeing opinion makes France's
    refutation weak evidence for France; a lone opinion is no evidence yet."""
    us, fr, de = fed.nodes["us"], fed.nodes["fr"], fed.nodes["de"]
    us.partners.update("de", communities=frozenset({"coalition"}))
    lie = _report(fed, frozenset({"fr", "de"}))
    give_opinion(fr, lie, "disagree", "not seen")
    release_pending(fr.releaser, ["us"])
    pull(us, "fr")
    alone = us.trust.reliability("fr")
    pull(de, "us")
    give_opinion(de, lie, "disagree", "same here")
    release_pending(de.releaser, ["us"])
    pull(us, "de")
    backed = us.trust.reliability("fr")
    assert alone.n == pytest.approx(us.trust.reliability("nobody").n)
    assert backed.mean > alone.mean and backed.n > alone.n


def test_opinions_about_what_we_never_released_to_the_partner_weigh_nothing(
        fed: Federation) -> None:
    """de got the report from Russia, not from us, and floods us with opinions about it
    and about ids it made up: shown, never evidence (opinions cannot be minted)."""
    us, de = fed.nodes["us"], fed.nodes["de"]
    lie = _report(fed)
    release_pending(fed.nodes["ru"].releaser, ["de"])
    pull(de, "ru")
    made_up = [f"indicator--{uuid.uuid4()}" for _ in range(20)]
    flood: list[dict[str, Any]] = []
    for target in [lie, *made_up]:  # pushed straight into our inbox, no policy of its own
        flood += _foreign_opinion(de, target, "disagree")[::-1]
    with fed.raw("de", "us") as client:
        got = client.post("/taxii2/api1/collections/inbox/objects/",
                          content=orjson.dumps({"objects": flood}),
                          headers={"Content-Type": "application/taxii+json;version=2.1"})
    assert got.status_code in (200, 202), got.text
    assert [o.partner for o in us.trust.opinions_about(lie)] == ["de"]
    assert all(us.trust.opinions_about(m) for m in made_up[:3])
    verdict(us, lie, "refuted", "deceptive")
    assert us.trust.opinion_record("de") == (0, 0, 0)
    assert us.trust.reliability("de").n == pytest.approx(us.trust.reliability("nobody").n)


def _foreign_opinion(node: Node, object_id: str, value: str
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    from detente.opinions import opinion_object

    us = node.partners.get("us")
    return opinion_object(node.identity_id, object_id, value, "same here",
                          [us.identity_id or "us"])


def test_adopt_a_partners_refutation(fed: Federation,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    us, fr = fed.nodes["us"], fed.nodes["fr"]
    lie = _report(fed)
    theirs = give_opinion(fr, lie, "strongly-disagree", "the server is a sinkhole")
    assert theirs.opinion is not None
    release_pending(fr.releaser, ["us"])
    pull(us, "fr")
    home = str(us.home)
    r = run(capsys, "evidence", "adopt", theirs.opinion["id"], "--home", home, "--json")
    assert r.code == 0, r.err
    done = orjson.loads(r.out)
    assert done["verdict"] == "refuted" and done["partner"] == "fr"
    assert done["objects"][0]["judged"] == ["ru"]
    ours = us.store.get(done["objects"][0]["opinion"])
    assert ours is not None and "sinkhole" in ours.body["explanation"]
    assert "adopted fr's opinion" in ours.body["explanation"]
    assert _live(us, "fr", lie) == 0
    # mistakes: unknown id, not an opinion, our own opinion
    for arg, code, words in ((f"opinion--{uuid.uuid4()}", 1, "no opinion"),
                             (lie, 1, "not an opinion"),
                             (done["objects"][0]["opinion"], 1, "our own opinion")):
        r = run(capsys, "evidence", "adopt", arg, "--home", home)
        assert r.code == code and words in r.err, (arg, r.err)
    with pytest.raises(NotFoundError):
        adopt(us, "opinion--00000000-0000-4000-8000-000000000000")
    with pytest.raises(ValidationError):
        adopt(us, lie)


@pytest.mark.parametrize("false_positive", [False, True])
def test_a_sighting_is_an_opinion_too(fed: Federation, capsys: pytest.CaptureFixture[str],
                                      false_positive: bool) -> None:
    us, ru = fed.nodes["us"], fed.nodes["ru"]
    lie = _report(fed)
    flag = ["--false-positive"] if false_positive else []
    r = run(capsys, "evidence", "sighting", lie, *flag, "--why", "proxy logs, 3 hosts",
            "--home", str(us.home))
    assert r.code == 0, r.err
    value = "disagree" if false_positive else "agree"
    assert f"({value}) for fr, ru" in r.out
    assert ("withdrawn from fr (1)" in r.out) is false_positive
    release_pending(us.releaser)
    pull(ru, "us")
    (seen,) = ru.trust.opinions_about(lie)
    assert seen.value == value and seen.explanation == "proxy logs, 3 hosts"
