"""The coalition scenario: the U.S., France and Russia against ISIS, end to end.

Every step goes through the real node: local ingest, the release path, TAXII over loopback
HTTP with signed requests, the intake path, earned trust, private deconfliction, leak
tracing and the ledgers.  :class:`Outcome` holds what the story should show; the test
suite asserts it, and the demo prints and charts it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from detente.errors import DetenteError
from detente.federation.exchange.claims import reveal_claim
from detente.federation.exchange.local import ingest_local
from detente.federation.exchange.pull import PartnerSummary, sync_all, sync_partner
from detente.federation.http.client import open_partner_client
from detente.federation.psi.remote import ItemsSpec, run_query
from detente.federation.psi.sets import OperationsBook, parse_operations
from detente.federation.witnessing.audit import verify_partner_log
from detente.federation.witnessing.witness import witness_partner
from detente.node import Node
from detente.rfi import answer_note, question_note
from detente.scenario.coalition_step import coalition_deconflict
from detente.scenario.intel import COMMON_THREATS, Holdings, build_holdings
from detente.scenario.live import LiveServer, listening_socket, serve_in_thread, url_of
from detente.scenario.world import stix_id, ts
from detente.stix.vocab import TLP_2_0_IDS
from detente.store import Query
from detente.usecases.opinion import verdict as give_verdict
from detente.usecases.trace import trace_artifact
from detente.web.operators import OperatorBook

__all__ = ["DEMO_PASSWORD", "Coalition", "Outcome", "play"]

NAMES = ("us", "fr", "ru")
#: operator account made in each demo node, so `detente serve` opens a usable UI
DEMO_OPERATOR, DEMO_PASSWORD = "analyst", "coalition-demo-2015"
#: starting tiers: who trusts whom how much before any evidence
START_TIERS = {("us", "fr"): 3, ("us", "ru"): 1, ("fr", "us"): 3, ("fr", "ru"): 1,
               ("ru", "us"): 1, ("ru", "fr"): 1}

Say = Callable[[str], None]

#: the Raqqa C2 the U.S. holds back at first, and claims (verifiable priority)
HELD_BACK_IP = "203.0.113.66"
HELD_BACK_ID = stix_id("indicator", "us", "held-back", HELD_BACK_IP)


@dataclass
class Outcome:
    """What happened, step by step: the figures the story is judged on."""

    #: per round: objects each node received from each partner
    received: list[dict[str, dict[str, int]]] = field(default_factory=list)
    #: Russia as the U.S. sees it after each step: (step, tier, reliability mean)
    ru_trust: list[tuple[str, int, float]] = field(default_factory=list)
    #: what Russia held from the U.S. after each round
    ru_holds_from_us: list[int] = field(default_factory=list)
    echoes_flagged: int = 0
    #: Russia re-issued U.S. indicators as its own: flagged at the U.S.?
    laundering_flagged: bool = False
    deception_credibility: int | None = None
    deception_reasons: list[str] = field(default_factory=list)
    ru_tier_after_refutation: int | None = None
    #: the U.S. refutation as an opinion: who it went to, who got it, France's relayed copy
    fr_held_relayed_lie: bool = False
    refutation_to: list[str] = field(default_factory=list)
    refutation_reached: list[str] = field(default_factory=list)
    relayed_copy_withdrawn: bool = False
    ru_sees: list[str] = field(default_factory=list)
    onward_denied_reached_ru: bool = False
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    alignment: int | None = None
    alignment_sent: int = 0
    leak_suspects: list[str] = field(default_factory=list)
    leak_message: str = ""
    #: France's RFI to Russia about the Amaq media office: answered, credited at France?
    rfi_answered: bool = False
    rfi_credited_at_fr: int = 0
    rfi_reached_us: bool = False
    #: the U.S. claim on a Raqqa C2 held back under TLP:RED, revealed to France later
    priority_certified: bool = False
    priority_before_france: bool = False
    credit: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the coalition run at threshold 3: what each node learned, and whether its ledger
    #: records the run (never the items)
    coalition_learned: dict[str, list[str]] = field(default_factory=dict)
    coalition_recorded: dict[str, bool] = field(default_factory=dict)
    #: the reconstructor's (a fourth node holding no items) ledger entry for that run
    coalition_reconstructor: dict[str, Any] = field(default_factory=dict)
    ledgers: dict[str, bool] = field(default_factory=dict)
    ledger_problems: list[str] = field(default_factory=list)


class Coalition:
    """Three nodes on loopback and the story played over them."""

    def __init__(self, out: Path, say: Say, seed: int = 2015) -> None:
        self.out, self.say, self.seed = out, say, seed
        self.nodes: dict[str, Node] = {}
        self.servers: dict[str, LiveServer] = {}
        self.holdings: dict[str, Holdings] = {}
        self.outcome = Outcome()

    # -- set-up ---------------------------------------------------------------------
    def start(self) -> None:
        socks = {n: listening_socket() for n in NAMES}
        for name in NAMES:
            self.nodes[name] = Node.init(self.out / name, name, url=url_of(socks[name]),
                                         communities="coalition")
            OperatorBook(self.nodes[name].store.engine).add(DEMO_OPERATOR, DEMO_PASSWORD)
        for (a, b), tier in START_TIERS.items():
            peer = self.nodes[b]
            self.nodes[a].partners.add(b, url=url_of(socks[b]),
                                       public_key=peer.public_key_b64, tier=tier,
                                       communities=frozenset({"coalition"}),
                                       identity_id=peer.identity_id)
        for name in NAMES:
            self.servers[name] = serve_in_thread(self.nodes[name], socks[name])
        ids = {n: node.identity_id for n, node in self.nodes.items()}
        self.holdings = build_holdings(ids, self.seed)
        for name, h in self.holdings.items():
            self._store(name, h.markings)
            book = OperationsBook(self.nodes[name].store.engine)
            book.load(parse_operations(h.operations))
        self._claim_held_back()
        self.say("Three nodes on 127.0.0.1 — us, fr, ru — each with its own key, store, "
                 "ledger and TAXII service; partners exchanged keys. The U.S. starts "
                 "France at tier 3 (trusted) and Russia at tier 1 (probation).")

    def _claim_held_back(self) -> None:
        """The U.S. holds a Raqqa C2 back (TLP:RED, source protection) and claims it: a
        commitment in its ledger, which France's witness checks; nothing is released."""
        us = self.nodes["us"]
        self._store("us", [self._held_back(TLP_2_0_IDS["red"], ts(1))])
        stored = us.store.get(HELD_BACK_ID)
        assert stored is not None
        us.claims.claim(stored.id, stored.version, stored.body)
        with open_partner_client(self.nodes["fr"], "us") as client:
            witness_partner(self.nodes["fr"], "us", client)

    def _held_back(self, marking: str, modified: str) -> dict[str, Any]:
        us = self.nodes["us"]
        return {"type": "indicator", "spec_version": "2.1", "id": HELD_BACK_ID,
                "created_by_ref": us.identity_id, "created": ts(1), "modified": modified,
                "name": "Raqqa C2 relay (source-protected)",
                "pattern": f"[ipv4-addr:value = '{HELD_BACK_IP}']", "pattern_type": "stix",
                "valid_from": ts(1), "indicator_types": ["malicious-activity"],
                "object_marking_refs": [marking]}

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()
        for node in self.nodes.values():
            node.close()

    def _store(self, name: str, objs: list[dict[str, Any]]) -> None:
        """Local ingest, exactly as `detente ingest` does it (trust sees it too)."""
        if objs:
            items = [(f"object {i}", o) for i, o in enumerate(objs, 1)]
            summary = ingest_local(self.nodes[name], items)
            if summary.rejected:
                raise DetenteError(f"scenario data rejected at {name}: "
                                   f"{summary.rejected[0].reason}")

    def advance(self, days: float) -> None:
        """Simulated time: weeks of cooperation played in seconds (trust clocks only)."""
        for node in self.nodes.values():
            node.clock_offset_us += int(days * 86_400 * 1e6)
            node.trust.refresh()

    def sightings(self) -> int:
        """U.S. sensors see infrastructure Russia reported: our own sightings confirm it."""
        us, ru = self.nodes["us"], self.holdings["ru"]
        reported = [o for o in ru.rounds[0] if o["type"] == "indicator"][:6]
        seen = [{
            "type": "sighting", "spec_version": "2.1",
            "id": stix_id("sighting", "us", o["id"]), "created_by_ref": us.identity_id,
            "created": ts(12), "modified": ts(12), "first_seen": ts(11), "last_seen": ts(12),
            "count": 3, "sighting_of_ref": o["id"], "where_sighted_refs": [us.identity_id],
            "object_marking_refs": [TLP_2_0_IDS["red"]],
        } for o in reported]
        self._store("us", seen)
        return len(seen)

    # -- the story --------------------------------------------------------------------
    def round(self, number: int) -> dict[str, dict[str, int]]:
        """Each service adds its reporting for the round, then every node syncs."""
        for name, h in self.holdings.items():
            self._store(name, h.rounds[number])
        got: dict[str, dict[str, int]] = {}
        for name, node in self.nodes.items():
            self._release_to(name)
            summaries = sync_all(node)
            got[name] = {s.partner: s.new + s.updated for s in summaries}
            self._check_sync(name, summaries)
        self.outcome.received.append(got)
        self.outcome.ru_holds_from_us.append(self._held("ru", "us"))
        self._note_trust(f"round {number + 1}")
        return got

    def _release_to(self, name: str) -> None:
        """Just before ``name`` pulls, the others release to it what they hold (in a real
        deployment their serve workers did so seconds after each commit; the demo keeps
        the order of a round: a node's reports reach us before we release to it the
        claims it is about to corroborate)."""
        for other, node in self.nodes.items():
            if other != name:
                node.releaser.catch_up(name)

    def _check_sync(self, name: str, summaries: list[PartnerSummary]) -> None:
        for s in summaries:
            self.outcome.echoes_flagged += s.echoes if name == "us" else 0
            if s.error:
                self.outcome.ledger_problems.append(f"{name} ← {s.partner}: {s.error}")

    def _held(self, holder: str, origin: str) -> int:
        store = self.nodes[holder].store
        return sum(1 for _ in store.iter_all(Query(origins=(origin,))))

    def _note_trust(self, step: str) -> None:
        us = self.nodes["us"]
        ru = us.partners.get("ru")
        self.outcome.ru_trust.append((step, us.partners.tier_of(ru),
                                      round(us.trust.reliability("ru").mean, 3)))

    def deception(self) -> None:
        """Russia's high-importance report: held at credibility 3, then refuted."""
        us = self.nodes["us"]
        lie = self.holdings["ru"].notable["deception"]
        grade = us.trust.grade(lie)
        self.outcome.deception_credibility = grade.credibility
        self.outcome.deception_reasons = list(grade.reasons)
        self.say(f"Russia reports an 'imminent attack' staging server (confidence 95). "
                 f"Uncorroborated, from a partner below tier 3: graded credibility "
                 f"{grade.credibility} — possibly true, do not act on it alone.")
        self.outcome.fr_held_relayed_lie = "fr" in us.releaser.recipients_of(lie, live=True)
        _, opinion = give_verdict(us, lie, "refuted", "No such server: our own collection "
                                  "shows the address unused; the report was deceptive.")
        self.outcome.ru_tier_after_refutation = us.partners.tier_of(us.partners.get("ru"))
        self._note_trust("refuted")
        self.outcome.refutation_to = sorted(opinion.audience)
        self.outcome.relayed_copy_withdrawn = (
            opinion.withdrawn.get("fr", 0) > 0
            and "fr" not in us.releaser.recipients_of(lie, live=True))
        for name in ("ru", "fr"):
            us.releaser.catch_up(name)
            sync_partner(self.nodes[name], "us")
            if opinion.opinion is not None and \
                    self.nodes[name].store.get(opinion.opinion["id"]) is not None:
                self.outcome.refutation_reached.append(name)
        self.outcome.ru_sees = [f"{o.said}: {o.explanation}"
                                for o in self.nodes["ru"].trust.opinions_about(lie)]
        self.say(f"The U.S. analyst refutes it: Russia drops to tier "
                 f"{self.outcome.ru_tier_after_refutation} at once and a review opens. The "
                 f"refutation goes out as a STIX opinion to "
                 f"{' and '.join(self.outcome.refutation_reached) or 'nobody'} — Russia's "
                 f"node shows '{self.outcome.ru_sees[0] if self.outcome.ru_sees else '?'}' "
                 f"— and the copy the U.S. had relayed to France is "
                 f"{'withdrawn' if self.outcome.relayed_copy_withdrawn else 'NOT withdrawn'}"
                 ": a refuted report is never relayed onward bare.")

    def laundering(self) -> None:
        """Russia's re-issue of U.S. indicators under its own ids: an echo at the U.S."""
        held = self.nodes["us"].store.get(self.holdings["ru"].notable["laundered"])
        self.outcome.laundering_flagged = bool(held and held.provenance.flags.get("echo"))

    def onward(self) -> None:
        """France received U.S. material marked onward: denied; Russia never gets it."""
        secret = self.holdings["us"].notable["no_onward"]
        self.outcome.onward_denied_reached_ru = self.nodes["ru"].store.get(secret) is not None

    def deconflict(self) -> None:
        """Pointer-mode PSI on planned operations, and the alignment check."""
        us = self.nodes["us"]
        ops = ItemsSpec.operations_json(self.holdings["us"].operations)
        for partner in ("fr", "ru"):
            result = run_query(us, partner, "pointer", ops)
            for p in result.pointers or ():
                self.outcome.conflicts.append({"partner": partner, "contact": p.contact})
        targets = [{"kind": "threat-actor", "name": t} for t in COMMON_THREATS]
        align = run_query(us, "ru", "cardinality",
                          ItemsSpec.from_json(targets, alignment=True))
        self.outcome.alignment, self.outcome.alignment_sent = align.count, align.sent
        contacts = sorted({c["contact"] for c in self.outcome.conflicts})
        self.say(f"Private deconfliction of planned operations (pointer mode): "
                 f"{len(self.outcome.conflicts)} conflicting place-time cell(s), with "
                 f"{', '.join(contacts) or 'nobody'} — and nothing else revealed. "
                 f"Alignment: {align.count} of Russia's declared targets are in the "
                 f"agreed common-threat set; neither list left its node.")

    def leak(self) -> None:
        """Russia's copy of a U.S. report surfaces in Tehran; the U.S. traces it."""
        report_id = self.holdings["us"].notable["leaked_report"]
        ru = self.nodes["ru"]
        report = ru.store.get(report_id)
        if report is None:
            self.outcome.leak_message = "Russia never received the report"
            return
        refs = [r for r in report.body.get("object_refs", []) if isinstance(r, str)]
        objs = [o.body for r in refs if (o := ru.store.get(r)) is not None]
        random.Random(self.seed).shuffle(objs)
        leaked = [report.body, *objs[: max(1, len(objs) * 7 // 10)]]
        artifact = orjson.dumps(leaked, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
        (self.out / "leaked-in-tehran.json").write_bytes(artifact)
        result = trace_artifact(self.nodes["us"], artifact)
        self.outcome.leak_suspects = [s.partner for s in result.report.accused]
        self.outcome.leak_message = result.report.message
        self.say(f"A U.S. report surfaces in Tehran ({len(leaked)} objects, re-serialised). "
                 f"detente trace: {result.report.message}")

    def rfi(self) -> None:
        """France asks Russia (and only Russia) about the Amaq media office; Russia answers,
        and France's ledger credits the answer."""
        fr, ru = self.nodes["fr"], self.nodes["ru"]
        ru_known = fr.partners.get("ru")
        question, rel = question_note(
            fr.identity_id, "Who runs the Amaq media office's distribution network, and "
            "from where?", [ru_known.identity_id or "ru"], deadline="2025-12-15")
        self._store("fr", [rel, question])
        self._release_to("ru")
        sync_all(ru)
        asked = ru.store.get(question["id"])
        if asked is None:
            return
        fr_known = ru.partners.get("fr")
        answer, arel = answer_note(
            ru.identity_id, asked, fr_known.identity_id or "fr", [],
            "Run from Raqqa by the media emir's office; couriers carry files to Turkey.")
        self._store("ru", [arel, answer])
        self._release_to("fr")
        sync_all(fr)
        self._release_to("us")
        sync_all(self.nodes["us"])
        self.outcome.rfi_answered = fr.store.get(answer["id"]) is not None
        self.outcome.rfi_credited_at_fr = len(fr.rfis.credited("ru"))
        self.outcome.rfi_reached_us = self.nodes["us"].store.get(question["id"]) is not None
        self.say(f"France asks Russia — and only Russia — who runs the Amaq media office "
                 f"(an RFI under TLP:AMBER). Russia answers; France's ledger credits it "
                 f"({self.outcome.rfi_credited_at_fr} answer). The U.S. never sees the "
                 f"question{'' if not self.outcome.rfi_reached_us else ' (IT DID)'}.")

    def priority(self) -> None:
        """France reports the C2 the U.S. held back; the U.S. declassifies it and reveals
        its claim; France verifies the U.S. knew first."""
        us, fr = self.nodes["us"], self.nodes["fr"]
        own = {**self._held_back(TLP_2_0_IDS["green"], ts(28)),
               "id": stix_id("indicator", "fr", HELD_BACK_IP),
               "created_by_ref": fr.identity_id, "name": "Raqqa C2 relay"}
        self._store("fr", [own])
        self._store("us", [self._held_back(TLP_2_0_IDS["green"], ts(29))])
        with open_partner_client(us, "fr") as client:
            answer = reveal_claim(us, HELD_BACK_ID, "fr", client)
        self.outcome.priority_certified = bool(answer.get("certified"))
        checked = fr.claims.verifications("us")
        self.outcome.priority_before_france = bool(checked and checked[-1].before_ours)
        self.say(f"France reports a Raqqa C2 of its own. The U.S. had held the same address "
                 f"back under TLP:RED and claimed it on day one; now declassified, it "
                 f"reveals the claim: France's node "
                 f"{'verifies' if self.outcome.priority_certified else 'does NOT verify'} "
                 f"that the commitment was in the U.S. log its own witness checked "
                 f"{'before' if self.outcome.priority_before_france else 'AFTER'} France's "
                 "report — credit for priority, without the U.S. having released it early.")

    def credit_and_ledgers(self) -> None:
        us = self.nodes["us"]
        for partner in ("fr", "ru"):
            credit = us.trust.credit(partner)
            self.outcome.credit[partner] = {
                "first_reports": credit.first_reports, "corroborated": credit.corroborated,
                "confirmed": credit.confirmed, "value": round(credit.value, 2),
                "median_lead_h": None if credit.median_lead_s is None
                else round(credit.median_lead_s / 3600, 1)}
        for a in NAMES:
            for b in NAMES:
                if a == b:
                    continue
                with open_partner_client(self.nodes[a], b) as client:
                    check = verify_partner_log(self.nodes[a], b, client)
                self.outcome.ledgers[f"{a}→{b}"] = check.ok
                self.outcome.ledger_problems += [f"{a}→{b}: {p}" for p in check.problems]
                self.outcome.ledger_problems += [
                    f"{a}→{b}: {what} {label}" for what, labels in
                    (("unaccounted", check.unaccounted), ("mismatched", check.mismatched))
                    for label in labels[:5]]
        ok = sum(self.outcome.ledgers.values())
        self.say(f"Every node verifies the others' ledgers: {ok} of "
                 f"{len(self.outcome.ledgers)} checks pass (consistency, cosignatures, "
                 "and every release received included with the exact view hash).")


def play(out: Path, say: Say, seed: int = 2015) -> Outcome:
    """Play the whole story into ``out``; the nodes' homes stay there."""
    coalition = Coalition(out, say, seed)
    coalition.start()
    try:
        got = coalition.round(0)
        say(f"Round 1 of sharing: Russia receives {got['ru'].get('us', 0)} U.S. objects "
            f"(TLP:GREEN to the coalition), France {got['fr'].get('us', 0)}.")
        coalition.advance(10)
        seen = coalition.sightings()
        coalition._note_trust("sightings")
        say(f"Ten days on, U.S. sensors sight {seen} of the C2 servers Russia reported: "
            "our own sightings confirm them.")
        coalition.advance(10)
        got = coalition.round(1)
        o = coalition.outcome
        say(f"Round 2: Russia's reports were corroborated by independent sources; the "
            f"U.S. now rates it tier {o.ru_trust[-1][1]} (reliability {o.ru_trust[-1][2]}), "
            f"and Russia holds {o.ru_holds_from_us[-1]} U.S. objects, up from "
            f"{o.ru_holds_from_us[0]}. {o.echoes_flagged} incoming report(s) repeated what "
            "we had already released to their sender: flagged as possible circular "
            "reporting, never counted as corroboration.")
        coalition.laundering()
        coalition.onward()
        coalition.deception()
        coalition.deconflict()
        coalition.leak()
        coalition.rfi()
        coalition.priority()
        coalition.credit_and_ledgers()
        # last, so no earlier figure moves; by now all three hold the held-back Raqqa C2 of
        # their own (the U.S. claim, France's report, Russia's deceptive report reused it)
        step = coalition_deconflict(coalition, HELD_BACK_IP, plant=False)
        coalition.outcome.coalition_learned = step.learned
        coalition.outcome.coalition_recorded = step.recorded
        coalition.outcome.coalition_reconstructor = step.reconstructor
    finally:
        coalition.stop()
    return coalition.outcome
