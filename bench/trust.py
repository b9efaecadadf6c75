"""Benchmark of earned trust: a seeded simulation over the real evidence path.

    python bench/trust.py [--quick] [--seeds N]

Partners with hidden reliabilities send STIX indicators to a real node (SQLite store,
ledger, partner book, release path); the node's own reports are released to partners
through ``Releaser``; our sightings (some false-positive) and an analyst confirm or refute
reports; ``TrustEngine.observe/confirm/refute/expire`` see all of it exactly as in
production.  The roles:

* honest (0.95, 0.90, 0.85) and noisy (0.70, 0.60) partners;
* two on-off attackers: accurate *trivial* reports for ``build`` days, then an important
  lie (an attribution indicator, confidence 85) every third day among trivial truths;
* a colluding pair (own accuracy 0.3) who re-send each other's reports a day later;
* an echo-launderer (own accuracy 0.5) who re-sends half the time what we released to it;
* in a third scenario, *clique*: three colluders re-sending their leader's
  fabrications about what we cannot check (no outcome ever arrives, no expiry), among honest and
  noisy partners who overlap on the same public pool.  detente is compared with its own
  pairwise-only model (cliques off) reading the same tables, and false merges (linked
  pairs of honest or non-colluding partners) are counted in this and the attack scenario.

The plain Beta Reputation System (Jøsang & Ismail 2002) runs side by side on the *same*
event stream: every corroboration counts (echoes, colluders), no forgetting, no importance;
confirmations and corroborations are positive, refutations and expiries negative.

Two scenarios per seed: *accuracy* (20 reports per partner, then 15 quiet days for outcomes
to arrive; RMSE of the reliability mean against the hidden reliability) and *attack* (the
on-off build-up then the lies; acted-on lies, detection, colluder tiers, echo handling).
BRS's lies-to-detection continues the attack on BRS alone after the run (it is a pure
count, so this is exact).  The RMSE floor an estimator cannot beat — the Beta(1,1) mean of
the true/false bits of each partner's own 20 reports, as if every report were resolved —
is printed for reference.
"""

from __future__ import annotations

import argparse
import base64
import math
import random
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from nacl.signing import SigningKey  # noqa: E402

from detente.ledger import Ledger  # noqa: E402
from detente.partners import PartnerBook  # noqa: E402
from detente.release import Releaser  # noqa: E402
from detente.schema import create_schema  # noqa: E402
from detente.stix.timestamps import format_micros, now_micros  # noqa: E402
from detente.stix.validate import validate  # noqa: E402
from detente.stix.vocab import TLP_2_0_IDS  # noqa: E402
from detente.store import Provenance  # noqa: E402
from detente.store.sql import open_store  # noqa: E402
from detente.trust import Reliability, TrustConfig, TrustEngine  # noqa: E402
from detente.trust.grading import source_grade  # noqa: E402
from detente.trust.tiers import TierInputs, earned_tier  # noqa: E402

DAY = 86_400 * 1_000_000
#: simulated days start at the real clock: the release path stamps releases with it, and
#: echo detection compares release time with receipt time
T0 = now_micros()
VALID_DAYS = 14
ROLES = {
    "honest1": 0.95, "honest2": 0.90, "honest3": 0.85, "noisy1": 0.70, "noisy2": 0.60,
    "onoff1": 1.0, "onoff2": 1.0, "collude1": 0.3, "collude2": 0.3, "launder": 0.5,
}
ATTACKERS = ("onoff1", "onoff2")
COLLUDERS = ("collude1", "collude2")
#: the clique scenario: honest and noisy partners overlapping on the same public pool of
#: indicators, and three colluders who re-send their leader's fabrications
CLIQUE = ("clique1", "clique2", "clique3")
CLIQUE_ROLES = {**{n: ROLES[n] for n in ("honest1", "honest2", "honest3", "noisy1", "noisy2")},
                **dict.fromkeys(CLIQUE, 0.0)}


# -- the plain Beta Reputation System -------------------------------------------------------
@dataclass
class Brs:
    r: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    s: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    by_claim: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    corroborated: set[str] = field(default_factory=set)
    resolved: set[str] = field(default_factory=set)

    def assertion(self, source: str, claim: str, object_id: str) -> int:
        """Every earlier report of the claim by another source corroborates both."""
        n = 0
        for other, oid in self.by_claim[claim]:
            if other != source:
                self.r[source] += 1
                self.r[other] += 1
                self.corroborated |= {oid, object_id}
                n += 1
        self.by_claim[claim].append((source, object_id))
        return n

    def outcome(self, claim: str, good: bool) -> None:
        for source, oid in self.by_claim[claim]:
            if oid in self.resolved:
                continue
            self.resolved.add(oid)
            (self.r if good else self.s)[source] += 1

    def expire(self, claim: str, oid: str, source: str) -> None:
        if oid not in self.resolved and oid not in self.corroborated:
            self.resolved.add(oid)
            self.s[source] += 1

    def mean(self, p: str) -> float:
        return (self.r[p] + 1) / (self.r[p] + self.s[p] + 2)

    def reliability(self, p: str) -> Reliability:
        return Reliability.from_beta(self.r[p] + 1, self.s[p] + 1, 2.0)

    def credibility(self, p: str, claim: str, object_id: str) -> int:
        others = {s for s, oid in self.by_claim[claim] if s != p and oid != object_id}
        if len(others) >= 2:
            return 1
        if others:
            return 2
        e = self.mean(p)
        return 2 if e >= 0.75 else 3 if e >= 0.55 else 4 if e >= 0.4 else 5


# -- the simulated world -------------------------------------------------------------------
@dataclass
class Report:
    object_id: str
    partner: str
    claim: str
    true: bool
    important: bool
    day: int
    echo: bool = False
    resolved: bool = False


class World:
    def __init__(self, tmp: Path, seed: int, *, build: int,
                 roles: dict[str, float] | None = None) -> None:
        self.roles = ROLES if roles is None else roles
        self.rng = random.Random(seed)
        self.now = T0
        self.store = open_store(f"sqlite:///{tmp / f'trust-{seed}-{build}.db'}", create=True)
        create_schema(self.store)  # every table, as a node has them
        self.ledger = Ledger(self.store.engine, "detente/bench")
        self.trust = TrustEngine(self.store.engine, self.store, ledger=self.ledger,
                                 config=TrustConfig(clock=lambda: self.now))
        self.book = PartnerBook(self.store.engine, tier_source=self.trust.tier)
        for name in self.roles:
            key = base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()
            self.book.add(name, url=f"http://127.0.0.1/{name}", public_key=key, tier=1)
        self.releaser = Releaser(self.store, self.book, node_name="us",
                                 node_identity=f"identity--{uuid.uuid4()}",
                                 communities=frozenset(), default_tlp=None, ledger=self.ledger)
        self.brs = Brs()
        self.build = build
        self.reports: list[Report] = []
        self.by_id: dict[str, Report] = {}
        self.active = [self._ip(True, i) for i in range(60)]
        self.next_true, self.next_false = 60, 0
        self.pending: dict[str, list[tuple[str, bool]]] = defaultdict(list)
        self.released_claims: list[str] = []
        self.acted: dict[str, int] = defaultdict(int)
        self.lies: dict[str, int] = defaultdict(int)
        self.detected_at: dict[str, int] = {}
        self.max_tier: dict[str, int] = defaultdict(int)
        self.false_confirmed = 0
        self.false_probable = 0
        self.brs_false_probable = 0
        self.echo_sent = 0
        self.echo_linked = 0
        self.brs_echo_counted = 0
        self.brs_acted: dict[str, int] = defaultdict(int)
        self.clique_graded = 0
        self.clique_probable = 0

    @staticmethod
    def _ip(true: bool, n: int) -> str:
        base = 0x0A000000 if true else 0xAC100000
        v = base + n
        return f"{v >> 24 & 255}.{v >> 16 & 255}.{v >> 8 & 255}.{v & 255}"

    def true_claim(self) -> str:
        return self.rng.choice(self.active)

    def false_claim(self) -> str:
        self.next_false += 1
        return self._ip(False, self.next_false)

    def rotate(self) -> None:
        for _ in range(3):
            self.active[self.rng.randrange(len(self.active))] = self._ip(True, self.next_true)
            self.next_true += 1

    def body(self, ip: str, important: bool, trivial: bool, local: bool = False) -> dict[str, Any]:
        stamp = format_micros(self.now)
        body: dict[str, Any] = {
            "type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}",
            "created": stamp, "modified": stamp, "pattern_type": "stix",
            "pattern": f"[ipv4-addr:value = '{ip}']", "valid_from": stamp,
            "valid_until": format_micros(self.now + VALID_DAYS * DAY),
        }
        if important:
            body["labels"], body["confidence"] = ["attribution"], 85
        elif trivial:
            body["labels"] = ["scanning"]
        if local:
            body["object_marking_refs"] = [TLP_2_0_IDS["clear"]]
        return body

    # -- one partner's report --------------------------------------------------------------
    def choose(self, name: str, day: int) -> tuple[str, bool, bool, bool, bool]:
        """(claim, true, important, trivial, echo)."""
        rng, rel = self.rng, self.roles[name]
        if name in ATTACKERS:
            lie = day >= self.build and (day - self.build) % 3 == 0
            return (self.false_claim(), False, True, False, False) if lie else \
                (self.true_claim(), True, False, True, False)
        if name == "launder" and self.released_claims and rng.random() < 0.5:
            return rng.choice(self.released_claims[-40:]), True, False, False, True
        if name in COLLUDERS:
            partner = COLLUDERS[1 - COLLUDERS.index(name)]
            mine = [r for r in self.reports if r.partner == partner and r.day == day - 1]
            if mine and rng.random() < 0.8:
                r = mine[0]
                return r.claim, r.true, r.important, False, False
        if name in CLIQUE[1:]:  # the leader reports; the others re-send it a day later
            lead = [r for r in self.reports if r.partner == CLIQUE[0] and r.day == day - 1]
            if lead and rng.random() < 0.9:
                r = lead[0]
                return r.claim, r.true, r.important, False, False
        true = rng.random() < rel
        u = rng.random()
        important, trivial = u < 0.15, 0.15 <= u < 0.40
        return (self.true_claim() if true else self.false_claim()), true, important, trivial, False

    def round(self, day: int, senders: list[str]) -> None:
        self.now = T0 + day * DAY
        self.rotate()
        batch: list[tuple[str, dict[str, Any], Report]] = []
        for name in senders:
            claim, true, important, trivial, echo = self.choose(name, day)
            body = self.body(claim, important, trivial)
            if name in CLIQUE:  # as in issue 14's attack: claims that never expire
                del body["valid_until"]
            rep = Report(body["id"], name, claim, true, important, day, echo)
            batch.append((name, body, rep))
        for _ in range(2):  # our own reports, released to partners
            ip = self.true_claim()
            body = self.body(ip, False, False, local=True)
            batch.append(("local", body, Report(body["id"], "local", ip, True, False, day)))
        self._intake(batch)
        self._grade(batch)
        self._outcomes(day)
        self.trust.expire(self.now)
        self._review(day)
        self._expire_brs()
        self._release()
        self._watch(day)

    def _intake(self, batch: list[tuple[str, dict[str, Any], Report]]) -> None:
        stored = []
        for name, body, rep in batch:
            prov = Provenance(origin=name, received_at=self.now)
            self.store.put_many([validate(body)], prov)
            obj = self.store.get(body["id"])
            assert obj is not None
            stored.append(obj)
            self.reports.append(rep)
            self.by_id[rep.object_id] = rep
            if self.brs.assertion(name, rep.claim, rep.object_id) and rep.echo:
                self.brs_echo_counted += 1
        for obs in self.trust.observe(stored):
            rep = self.by_id[obs.object_id]
            if rep.echo:
                self.echo_sent += 1
                self.echo_linked += bool(obs.corroborates)
        for name in {n for n, _, _ in batch} - {"local"}:
            self.trust.tier_changes()
            del name

    def _grade(self, batch: list[tuple[str, dict[str, Any], Report]]) -> None:
        for name, _body, rep in batch:
            if name == "local":
                continue
            suspicious = rep.echo or name in COLLUDERS
            if name in CLIQUE:
                g = self.trust.grade(rep.object_id)
                self.clique_graded += 1
                self.clique_probable += g.credibility <= 2
            if not (rep.important or suspicious):
                continue
            g = self.trust.grade(rep.object_id)
            brs = self.brs.credibility(name, rep.claim, rep.object_id)
            if rep.important and not rep.true and name in ATTACKERS:
                self.lies[name] += 1
                self.acted[name] += g.credibility <= 2
                self.brs_acted[name] += brs <= 2
            if (suspicious and not rep.true) or rep.echo:
                self.false_confirmed += g.credibility == 1
                self.false_probable += g.credibility <= 2 and not rep.true
                self.brs_false_probable += brs <= 2 and not rep.true

    def _outcomes(self, day: int) -> None:
        sightings = []
        for rep in self.reports:
            if rep.resolved or rep.partner == "local" or rep.echo or rep.partner in CLIQUE:
                continue  # the clique reports what we cannot check: no outcome ever comes
            p = 0.5 if rep.important else (0.15 if rep.true else 0.08)
            if self.rng.random() >= p:
                continue
            rep.resolved = True
            if rep.important:  # the analyst checks important reports
                verb = self.trust.confirm if rep.true else self.trust.refute
                verb(rep.object_id, "checked against our collection")
            else:
                sightings.append(self._sighting(rep.object_id, not rep.true))
            self.brs.outcome(rep.claim, rep.true)
        if sightings:
            self.store.put_many([validate(s) for s in sightings], Provenance())
            self.trust.observe([o for s in sightings if (o := self.store.get(s["id"]))])
        del day

    def _review(self, day: int) -> None:
        """The analyst closes a review after a week without another refuted report."""
        for rv in self.trust.reviews():
            recent = [r for r in self.trust.reviews(open_only=False)
                      if r.partner == rv.partner and r.opened_at > self.now - 7 * DAY]
            if not recent:
                self.trust.close_review(rv.id, "reviewed: an honest mistake")
        del day

    def _sighting(self, of: str, false_positive: bool) -> dict[str, Any]:
        stamp = format_micros(self.now)
        body: dict[str, Any] = {"type": "sighting", "spec_version": "2.1",
                                "id": f"sighting--{uuid.uuid4()}", "created": stamp,
                                "modified": stamp, "sighting_of_ref": of}
        if false_positive:
            body["x_opencti_negative"] = True
        return body

    def _expire_brs(self) -> None:
        limit = (self.now - T0) // DAY - VALID_DAYS
        for rep in self.reports:
            if rep.day == limit and rep.partner != "local":
                self.brs.expire(rep.claim, rep.object_id, rep.partner)

    def _release(self) -> None:
        if "launder" in self.roles:
            self.releaser.catch_up("launder")
        self.trust.tier_changes()
        self.released_claims = [r.claim for r in self.reports if r.partner == "local"]

    def _watch(self, day: int) -> None:
        for name in self.roles:
            p = self.book.get(name)
            self.max_tier[name] = max(self.max_tier[name], self.book.tier_of(p))
        for name in ATTACKERS:
            if name in self.detected_at or not self.lies[name]:
                continue
            high = self.trust.reliability(name, "importance:high")
            if high.mean < 0.5:
                self.detected_at[name] = self.lies[name]
        del day


# -- scenarios ------------------------------------------------------------------------------
def accuracy(tmp: Path, seed: int) -> tuple[list[float], list[float], list[float]]:
    """Squared errors after 20 reports per partner: detente, BRS, floor."""
    w = World(tmp, seed, build=10_000)
    for day in range(20):
        w.round(day, list(ROLES))
    for day in range(20, 20 + VALID_DAYS + 1):
        w.round(day, [])
    errs, brs, floor = [], [], []
    for name, hidden in ROLES.items():
        own = [r for r in w.reports if r.partner == name and not r.echo]
        errs.append((w.trust.reliability(name).mean - hidden) ** 2)
        brs.append((w.brs.mean(name) - hidden) ** 2)
        floor.append(((sum(r.true for r in own) + 1) / (len(own) + 2) - hidden) ** 2)
    return errs, brs, floor


@dataclass
class CliqueRun:
    """The clique scenario of one seed: detente and the pairwise-only model side by side."""

    grades: dict[str, str]
    pairwise_grades: dict[str, str]
    low: float
    pairwise_low: float
    graded: int
    probable: int
    honest_pairs: int
    honest_merged: int
    clique_pairs_linked: int


def clique_scenario(tmp: Path, seed: int, days: int) -> CliqueRun:
    """Three colluders re-send each other's reports among honest partners who overlap on
    the same public pool; the pairwise-only model (cliques off) reads the same tables."""
    w = World(tmp, 2000 + seed, build=10_000, roles=CLIQUE_ROLES)
    for day in range(days):
        w.round(day, list(CLIQUE_ROLES))
    pairwise = TrustEngine(w.store.engine, w.store, config=replace(
        w.trust.config, clique_min_joint=10**9))
    model = w.trust._model()  # the benchmark reads the model's clique tests directly
    honest = [n for n in CLIQUE_ROLES if n not in CLIQUE]
    tested = [(p, q) for i, p in enumerate(honest) for q in honest[i + 1:]]
    cfg = w.trust.config
    return CliqueRun(
        {n: source_grade(w.trust.reliability(n), cfg) for n in CLIQUE},
        {n: source_grade(pairwise.reliability(n), cfg) for n in CLIQUE},
        max(w.trust.reliability(n).low for n in CLIQUE),
        max(pairwise.reliability(n).low for n in CLIQUE),
        w.clique_graded, w.clique_probable, len(tested),
        sum(model.cliques.linked(p, q) for p, q in tested),
        sum(model.cliques.linked(p, q) for i, p in enumerate(CLIQUE) for q in CLIQUE[i + 1:]))


def brs_lies_to_detect(w: World, name: str) -> int:
    """Continue the attack on BRS alone (a pure count) until its mean falls below 0.5."""
    r, s = w.brs.r[name], w.brs.s[name]
    lies = w.lies[name]
    while (r + 1) / (r + s + 2) >= 0.5:
        s, lies = s + 1, lies + 1
    return lies


def attack(tmp: Path, seed: int, build: int, lies_days: int) -> World:
    w = World(tmp, seed, build=build)
    for day in range(build + lies_days):
        w.round(day, list(ROLES))
    return w


def brs_tier(w: World, name: str, days: float) -> int:
    rel = w.brs.reliability(name)
    inputs = TierInputs(rel, days, 1.0, 10**6, 1)
    return earned_tier(inputs, w.trust.config)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=None)
    args = ap.parse_args()
    seeds = args.seeds or (2 if args.quick else 5)
    build, lie_days = (40, 9) if args.quick else (100, 30)
    started = time.perf_counter()
    errs: list[float] = []
    brs_errs: list[float] = []
    floor: list[float] = []
    acted, brs_acted, detect, brs_detect, colluder_tiers, brs_colluder = [], [], [], [], [], []
    false_confirmed = false_probable = brs_false = echo_sent = echo_linked = brs_echo = 0
    clique_days = 30 if args.quick else 60
    runs: list[CliqueRun] = []
    others_pairs = others_merged = 0
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for seed in range(seeds):
            e, b, f = accuracy(tmp, seed)
            errs += e
            brs_errs += b
            floor += f
            w = attack(tmp, 1000 + seed, build, lie_days)
            for name in ATTACKERS:
                acted.append(w.acted[name])
                brs_acted.append(w.brs_acted[name])
                detect.append(w.detected_at.get(name, w.lies[name] + 1))
                brs_detect.append(brs_lies_to_detect(w, name))
            others = [n for n in ROLES if n not in COLLUDERS]
            model = w.trust._model()  # the clique tests of the attack run's final model
            for i, p in enumerate(others):
                for q in others[i + 1:]:
                    others_pairs += 1
                    others_merged += model.cliques.linked(p, q)
            run = clique_scenario(tmp, seed, clique_days)
            runs.append(run)
            print(f"  clique: grades {run.grades} (pairwise only {run.pairwise_grades}), "
                  f"{run.clique_pairs_linked}/3 clique pairs linked, honest pairs merged "
                  f"{run.honest_merged}/{run.honest_pairs}")
            for name in COLLUDERS:
                colluder_tiers.append(w.max_tier[name])
                brs_colluder.append(brs_tier(w, name, build + lie_days))
            false_confirmed += w.false_confirmed
            false_probable += w.false_probable
            brs_false += w.brs_false_probable
            echo_sent += w.echo_sent
            echo_linked += w.echo_linked
            brs_echo += w.brs_echo_counted
            grades = {n: source_grade(w.trust.reliability(n), w.trust.config) for n in ROLES}
            print(f"seed {seed}: grades {grades}")
            print(f"  tiers reached {dict(w.max_tier)}; reviews {len(w.trust.reviews())}")
    rmse = math.sqrt(sum(errs) / len(errs))
    brs_rmse = math.sqrt(sum(brs_errs) / len(brs_errs))
    floor_rmse = math.sqrt(sum(floor) / len(floor))
    lies_acted = max(acted) if acted else 0
    brs_lies = sum(brs_acted) / len(brs_acted) if brs_acted else 0.0
    print(f"seeds {seeds}, on-off build-up {build} days, attack {lie_days} days, "
          f"{time.perf_counter() - started:.1f} s")
    print(f"reliability RMSE after 20 reports: detente {rmse:.3f}, BRS {brs_rmse:.3f}, "
          f"floor (every report resolved) {floor_rmse:.3f}")
    print(f"important lies acted on (credibility 1-2) per attacker: detente max "
          f"{lies_acted}, mean {sum(acted) / len(acted):.2f}; BRS mean {brs_lies:.2f}")
    print(f"lies until high-importance reliability < 0.5: detente {detect}; "
          f"BRS overall < 0.5: {brs_detect}")
    print(f"max tier reached by colluders: detente {colluder_tiers}, BRS {brs_colluder}")
    print(f"echoes: sent {echo_sent}, linked as independent corroboration by detente "
          f"{echo_linked}, counted as corroboration by BRS {brs_echo}")
    print(f"echo/colluder reports graded 1: detente {false_confirmed}; false ones graded <= 2:"
          f" detente {false_probable}, BRS {brs_false}")
    best = min(g for r in runs for g in r.grades.values())
    pairwise_best = min(g for r in runs for g in r.pairwise_grades.values())
    low = max(r.low for r in runs)
    pairwise_low = max(r.pairwise_low for r in runs)
    graded, probable = sum(r.graded for r in runs), sum(r.probable for r in runs)
    honest_pairs = sum(r.honest_pairs for r in runs) + others_pairs
    merged = sum(r.honest_merged for r in runs) + others_merged
    print(f"clique of three ({clique_days} days): best grade detente {best} (lower bound "
          f"{low:.3f}), pairwise only {pairwise_best} ({pairwise_low:.3f}); clique reports "
          f"graded <= 2: {probable}/{graded}")
    print(f"false merges of honest or non-colluding partners: {merged}/{honest_pairs} pairs")
    print(f"RESULT trust rmse_20={rmse:.3f} floor_20={floor_rmse:.3f} "
          f"rmse_over_floor={rmse / floor_rmse:.2f} brs_rmse_20={brs_rmse:.3f} "
          f"lies_acted_per_attacker={lies_acted} brs_lies_acted={brs_lies:.1f} "
          f"false_confirmed={false_confirmed} clique_grade={best} "
          f"clique_grade_pairwise={pairwise_best} clique_low={low:.3f} "
          f"clique_probable={probable}/{graded} false_merges={merged}/{honest_pairs}")


if __name__ == "__main__":
    main()
