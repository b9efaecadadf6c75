"""The reliability model: pure functions over assertions and corroboration links.

For each partner P, reliability r_P is the probability that an assertion of P is true,
with a Beta posterior.  Each resolved assertion a contributes its *posterior probability
of being true* q_a, weighted by importance w_a and forgetting d_a::

    alpha_P = alpha_0 + sum_a w_a d_a q_a          beta_P = beta_0 + sum_a w_a d_a (1 - q_a)
    d_a     = 2 ** (-(now - t_a) / half_life)
    q_a     = 1 (confirmed by us), 0 (refuted by us), else  h L_a / (h L_a + 1 - h)
    L_a     = prod_Q (1 + e_Q (L_c - 1))  [* L_expired when valid_until passed]
    e_Q     = pair_weight(P, Q) * r_Q  [* late_weight if Q reported it first]

L_a is the likelihood ratio of the corroboration evidence; e_Q in [0, 1] is how much an
independent source Q's agreement is worth; h is P's base rate from *our own* verdicts only
(confirmed / refuted, with the same prior), so corroboration never feeds the base rate it
is judged against (no self-amplification: weak agreement alone cannot push r_P to 1).
Because reliabilities weight each other's corroborations, the model is solved as a fixed
point (a few sweeps from the prior mean).  A pending, uncorroborated assertion is not
evidence yet; an expired one (valid_until passed, never confirmed or refuted) multiplies
its likelihood ratio by L_expired, so weak corroboration of an expired claim is negative.

Collusion: pair_weight(P, Q) is the posterior mean rate at which the claims P and Q both
assert are *also* supported by a third party (another source, our own report, or our
confirmation), with prior Beta(1, 2), times the pair's outcome record.  Two partners who
only ever corroborate each other converge to weight 0; a first joint claim weighs 1/4.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from detente.opinions import Stance
from detente.store.base import LOCAL
from detente.trust.betadist import beta_quantile
from detente.trust.cliques import CliqueFinder
from detente.trust.config import TrustConfig

__all__ = ["Counts", "Fact", "Link", "Model", "Reliability", "Support", "Totals"]

HIGH = "importance:high"


@dataclass(frozen=True, slots=True)
class Fact:
    """One assertion as the model sees it (claims: its non-echo claim keys)."""

    id: int
    partner: str
    object_id: str
    time: int
    seq: int
    importance: float
    echo: bool
    revoked: bool
    outcome: str | None
    outcome_at: int | None
    claims: frozenset[str]
    topics: frozenset[str] = frozenset()

    @property
    def counts(self) -> bool:
        return not (self.echo or self.revoked) and bool(self.claims)


@dataclass(frozen=True, slots=True)
class Link:
    first: int
    later: int
    independent: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Reliability:
    """Posterior mean and 90% credible interval; ``n`` the weighted, decayed evidence."""

    mean: float
    low: float
    high: float
    n: float

    @classmethod
    def from_beta(cls, alpha: float, beta: float, prior: float) -> Reliability:
        return cls(alpha / (alpha + beta), beta_quantile(0.05, alpha, beta),
                   beta_quantile(0.95, alpha, beta), alpha + beta - prior)


@dataclass(frozen=True, slots=True)
class Support:
    """Who independently agrees with an assertion, and who was set aside and why."""

    weight: float
    sources: tuple[tuple[str, float], ...]
    excluded: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Totals:
    """What a model built from part of the assertions needs to know of all of them (SQL
    aggregates, see ``TrustEngine``, asked only when needed): the facts left out are
    those that weigh nothing in a source's reliability or earned tier — no outcome, no
    link (so no claim another source asserted: intake links every two sources'
    assertions of a claim), no opinion about their object — so the model needs only how
    many claims each source made (the clique test's volumes) and when each source first
    asserted anything that counts (the tier's time on record)."""

    #: every source with an assertion
    sources: frozenset[str]
    #: per source: distinct non-echo claims of its counting assertions
    volume: Callable[[], Mapping[str, int]]
    #: the earliest time of a source's counting assertion (µs), None if it has none
    first: Callable[[str], int | None]


@dataclass
class Counts:
    assertions: int = 0
    echoes: int = 0
    corroborated: int = 0
    confirmed: int = 0
    refuted: int = 0
    expired: int = 0
    important_good: int = 0
    #: assertions that weigh nothing (echoes, revoked, no claim): outside every outcome
    not_counted: int = 0

    @property
    def awaiting(self) -> int:
        """Counted assertions with no outcome yet (neither confirmed, refuted nor
        expired): with ``not_counted`` and the three outcomes, a partition of
        ``assertions``.  ``corroborated`` is another dimension and overlaps them."""
        return (self.assertions - self.not_counted - self.confirmed - self.refuted
                - self.expired)


@dataclass
class _Pair:
    joint: set[str] = field(default_factory=set)
    supported: set[str] = field(default_factory=set)
    good: set[str] = field(default_factory=set)
    bad: set[str] = field(default_factory=set)


class Model:
    """Everything the engine infers from its tables, computed once per change.

    Built with ``totals``, it is a *partial* model: ``facts`` are only those that can
    weigh in a reliability or a tier (see :class:`Totals`), and it answers only what a
    tier refresh and a grade ask — reliabilities (overall and by topic),
    :meth:`important_good`, :meth:`first_time`, :meth:`support`, the confirmed and refuted
    claims — exactly as the whole model would (each term is a fact with an outcome or a
    link, and both ends of a link are loaded); the questions that need every fact of a
    partner (:meth:`counts`, :meth:`first_reports`) are answered only for the
    ``complete`` partners, whose every fact was loaded too (a fact of another source that
    shares one of their claims has a link, so it is loaded), and refused for any other."""

    def __init__(self, facts: Iterable[Fact], links: Iterable[Link], now: int,
                 config: TrustConfig, stances: Iterable[Stance] = (),
                 totals: Totals | None = None,
                 complete: frozenset[str] = frozenset()) -> None:
        self.config, self.now, self.totals = config, now, totals
        self.complete = complete
        self.facts = {f.id: f for f in facts}
        self.links = list(links)
        self.stances: dict[str, list[Stance]] = defaultdict(list)  # by object
        self.stances_by: dict[str, list[Stance]] = defaultdict(list)  # by partner
        for s in stances:
            if s.stance and s.partner != LOCAL:
                self.stances[s.object_id].append(s)
                self.stances_by[s.partner].append(s)
        self.by_partner: dict[str, list[Fact]] = defaultdict(list)
        self.by_claim: dict[str, list[Fact]] = defaultdict(list)
        self.by_object: dict[str, list[Fact]] = defaultdict(list)
        self._counts: dict[str, Counts] = {}
        for f in self.facts.values():
            self.by_partner[f.partner].append(f)
            self.by_object[f.object_id].append(f)
            if f.counts:
                for c in f.claims:
                    self.by_claim[c].append(f)
        self.confirmed = self._claims_with("confirmed")
        self.refuted = self._claims_with("refuted")
        sources = set(self.by_partner) if totals is None else totals.sources
        self.partners = sorted((sources | set(self.stances_by)) - {LOCAL})
        self._neighbours = self._index_links()
        joint = self._joint_claims()
        self.cliques = CliqueFinder(
            {c: frozenset(f.partner for f in fs) for c, fs in self.by_claim.items()},
            {key: len(claims) for key, claims in joint.items()},
            alpha=config.clique_alpha, min_joint=config.clique_min_joint,
            min_lift=config.clique_min_lift, never=frozenset({LOCAL}),
            volume=None if totals is None else totals.volume)
        self.pairs = self._pair_weights(joint)
        self.rel = self._solve()

    # -- structure ----------------------------------------------------------------------
    def _claims_with(self, outcome: str) -> set[str]:
        return {c for f in self.facts.values() if f.counts and f.outcome == outcome
                for c in f.claims}

    def _index_links(self) -> dict[int, list[tuple[Link, Fact]]]:
        out: dict[int, list[tuple[Link, Fact]]] = defaultdict(list)
        for link in self.links:
            a, b = self.facts.get(link.first), self.facts.get(link.later)
            if a is None or b is None:
                continue
            out[a.id].append((link, b))
            out[b.id].append((link, a))
        return out

    def _joint_claims(self) -> dict[tuple[str, str], dict[str, list[tuple[Fact, Fact]]]]:
        """(P, Q) -> the claims both assert with an independent link -> the linked facts."""
        out: dict[tuple[str, str], dict[str, list[tuple[Fact, Fact]]]] = defaultdict(dict)
        for link in self.links:
            a, b = self.facts.get(link.first), self.facts.get(link.later)
            if not link.independent or a is None or b is None or LOCAL in (a.partner, b.partner):
                continue
            if a.partner == b.partner:
                continue
            claims = out[_pair_key(a.partner, b.partner)]
            for c in a.claims & b.claims:
                claims.setdefault(c, []).append((a, b))
        return out

    def _pair_weights(self, joint: dict[tuple[str, str], dict[str, list[tuple[Fact, Fact]]]]
                      ) -> dict[tuple[str, str], float]:
        stats: dict[tuple[str, str], _Pair] = defaultdict(_Pair)
        for key, claims in joint.items():
            for c, facts in claims.items():
                for a, b in facts:
                    self._classify(stats[key], c, a, b)
        cfg = self.config
        return {key: (len(p.supported) + cfg.pair_prior_good)
                / (len(p.joint) + cfg.pair_prior_good + cfg.pair_prior_bad)
                * (len(p.good) + 1) / (len(p.good) + len(p.bad) + 1)
                for key, p in stats.items()}

    def _classify(self, pair: _Pair, claim: str, a: Fact, b: Fact) -> None:
        """A third party supports a joint claim only when it is linked to neither member
        (a clique's members are not each other's third parties)."""
        pair.joint.add(claim)
        members = {a.partner, b.partner}
        if claim in self.confirmed or any(
                g.partner not in members and not self._linked_to(g.partner, members)
                for g in self.by_claim.get(claim, ())):
            pair.supported.add(claim)
        if claim in self.confirmed:
            pair.good.add(claim)
        if claim in self.refuted or (a.outcome == "expired" and b.outcome == "expired"):
            pair.bad.add(claim)

    def _linked_to(self, source: str, others: Iterable[str]) -> bool:
        return any(self.cliques.linked(source, o) for o in others)

    def pair_weight(self, p: str, q: str) -> float:
        if LOCAL in (p, q):
            return 1.0
        cfg = self.config
        prior = cfg.pair_prior_good / (cfg.pair_prior_good + cfg.pair_prior_bad)
        return self.pairs.get(_pair_key(p, q), prior)

    # -- evidence -----------------------------------------------------------------------
    def support(self, fact: Fact, rel: dict[str, float] | None = None) -> Support:
        """Independent agreement with ``fact``: one weight per other source (its best)."""
        neighbours = self._neighbours.get(fact.id)
        if not neighbours:  # no link: nobody agrees, nobody was set aside
            return _NO_SUPPORT
        rel = self.rel_means() if rel is None else rel
        best: dict[str, float] = {}
        set_aside: dict[str, tuple[int, str]] = {}
        for link, other in neighbours:
            if other.partner == fact.partner:
                continue
            if not (link.independent and other.counts and fact.counts):
                # the reason of its earliest report (intake order: the same on any backend)
                why = (other.seq, link.reason if not link.independent
                       else "its report is an echo or revoked")
                set_aside[other.partner] = min(set_aside.get(other.partner, why), why)
                continue
            r_q = 1.0 if other.partner == LOCAL else rel.get(other.partner, self._prior_mean)
            late = self.config.late_weight if other.seq < fact.seq else 1.0
            e = self.pair_weight(fact.partner, other.partner) * r_q * late
            best[other.partner] = max(best.get(other.partner, 0.0), e)
        excluded = {p: why for p, (_, why) in set_aside.items()}
        counted: dict[str, float] = {}
        for q, e in sorted(best.items(), key=lambda kv: (-kv[1], kv[0])):
            # a clique counts as one source: its best member, and not for its own members
            peer = next((p for p in (fact.partner, *counted) if self.cliques.linked(q, p)),
                        None)
            if peer is None:
                counted[q] = e
                excluded.pop(q, None)
                continue
            test = self.cliques.test(q, peer)
            note = test.why() if test is not None else "their claims co-occur beyond chance"
            excluded[q] = (f"in a clique with {peer}: {note}" if peer == fact.partner
                           else f"counts as one source with {peer}: {note}")
        sources = tuple(counted.items())
        return Support(sum(counted.values()), sources, tuple(sorted(excluded.items())))

    @property
    def _prior_mean(self) -> float:
        return self.config.prior_alpha / (self.config.prior_alpha + self.config.prior_beta)

    def _evidence(self, fact: Fact, base: float,
                  rel: dict[str, float]) -> tuple[float, float] | None:
        """(weight, q) of one assertion, or None when it is not evidence yet."""
        if not fact.counts:
            return None
        if fact.outcome in ("confirmed", "refuted"):
            q = 1.0 if fact.outcome == "confirmed" else 0.0
        else:
            lr = math.prod(1.0 + e * (self.config.corroboration_lr - 1.0)
                           for _, e in self.support(fact, rel).sources)
            if fact.outcome == "expired":
                lr *= self.config.expiry_lr
            elif lr == 1.0:
                return None
            q = base * lr / (base * lr + 1.0 - base)
        when = fact.outcome_at or fact.time
        decay = 2.0 ** (-max(0, self.now - when) / self.config.half_life_us)
        return fact.importance * decay, q

    def _base_rate(self, facts: Iterable[Fact]) -> float:
        """P's reliability from our own verdicts alone (confirmed / refuted)."""
        alpha, beta = self.config.prior_alpha, self.config.prior_beta
        for f in facts:
            if f.counts and f.outcome in ("confirmed", "refuted"):
                decay = 2.0 ** (-max(0, self.now - (f.outcome_at or f.time))
                                / self.config.half_life_us)
                alpha += f.importance * decay * (f.outcome == "confirmed")
                beta += f.importance * decay * (f.outcome == "refuted")
        return alpha / (alpha + beta)

    def _beta(self, facts: Iterable[Fact], base: float,
              rel: dict[str, float]) -> tuple[float, float]:
        alpha, beta = self.config.prior_alpha, self.config.prior_beta
        linked = self._neighbours
        for f in facts:
            if f.outcome is None and f.id not in linked:
                continue  # pending and uncorroborated: not evidence yet (as _evidence)
            ev = self._evidence(f, base, rel)
            if ev is not None:
                alpha += ev[0] * ev[1]
                beta += ev[0] * (1.0 - ev[1])
        return alpha, beta

    def _solve(self) -> dict[str, tuple[float, float]]:
        means = {p: self._prior_mean for p in self.partners}
        self.base = {p: self._base_rate(self.by_partner[p]) for p in self.partners}
        out: dict[str, tuple[float, float]] = {}
        for _ in range(max(1, self.config.iterations)):
            out = {p: self._with_opinions(p, self._beta(self.by_partner[p], self.base[p],
                                                          means), means)
                   for p in self.partners}
            means = {p: a / (a + b) for p, (a, b) in out.items()}
        return out

    # -- opinions -----------------------------------------------------------------------
    def truth(self, object_id: str) -> tuple[float, int] | None:
        """Our verdict on an object: (1.0 confirmed | 0.0 refuted, when), or None."""
        for f in self.by_object.get(object_id, ()):
            if not f.counts:
                continue
            if f.outcome == "refuted" or f.claims & self.refuted:
                return 0.0, f.outcome_at or f.time
            if f.outcome == "confirmed" or f.claims & self.confirmed:
                return 1.0, f.outcome_at or f.time
        return None

    def opinion_terms(self, partner: str, rel: dict[str, float] | None = None
                      ) -> list[tuple[Stance, float, float]]:
        """(opinion, weight, q) of each of ``partner``'s opinions that is evidence yet:
        q is the probability the opinion was right — 1 or 0 once our verdict resolved the
        object; otherwise the reliability-weighted share of other partners' opinions
        that side with it, each discounted by its pair weight (two partners that
        only ever back each other weigh little), at half the weight."""
        rel = self.rel_means() if rel is None else rel
        out = []
        for s in self.stances_by.get(partner, ()):
            importance = max((f.importance for f in self.by_object.get(s.object_id, ())),
                             default=1.0)
            weight = self.config.opinion_weight * importance
            verdict = self.truth(s.object_id)
            if verdict is not None:
                right = (verdict[0] > 0.5) == (s.stance > 0)
                when = max(s.time, verdict[1])
                q = 1.0 if right else 0.0
            else:
                q_peer = self._peer_view(s, rel)
                if q_peer is None:
                    continue
                q, when, weight = q_peer, s.time, weight / 2
            decay = 2.0 ** (-max(0, self.now - when) / self.config.half_life_us)
            out.append((s, weight * decay, q))
        return out

    def _peer_view(self, s: Stance, rel: dict[str, float]) -> float | None:
        agree = dispute = 0.0
        backers: dict[str, float] = {}
        for other in self.stances.get(s.object_id, ()):
            if other.partner != s.partner:
                backers[other.partner] = 1.0 if other.stance > 0 else -1.0
        for q, side in backers.items():
            e = self.pair_weight(s.partner, q) * rel.get(q, self._prior_mean)
            if (side > 0) == (s.stance > 0):
                agree += e
            else:
                dispute += e
        if agree + dispute == 0:
            return None
        return (agree + 0.5) / (agree + dispute + 1.0)

    def _with_opinions(self, partner: str, ab: tuple[float, float],
                       rel: dict[str, float]) -> tuple[float, float]:
        alpha, beta = ab
        for _, w, q in self.opinion_terms(partner, rel):
            alpha += w * q
            beta += w * (1.0 - q)
        return alpha, beta

    def opinion_record(self, partner: str) -> tuple[int, int, int]:
        """(right, wrong, unresolved) of ``partner``'s opinions, by our verdicts."""
        right = wrong = 0
        mine = self.stances_by.get(partner, ())
        for s in mine:
            verdict = self.truth(s.object_id)
            if verdict is not None:
                if (verdict[0] > 0.5) == (s.stance > 0):
                    right += 1
                else:
                    wrong += 1
        return right, wrong, len(mine) - right - wrong

    def rel_means(self) -> dict[str, float]:
        return {p: a / (a + b) for p, (a, b) in self.rel.items()}

    # -- answers ------------------------------------------------------------------------
    def reliability(self, partner: str, topic: str | None = None) -> Reliability:
        prior = self.config.prior_alpha + self.config.prior_beta
        if topic is None:
            a, b = self.rel.get(partner, (self.config.prior_alpha, self.config.prior_beta))
            return Reliability.from_beta(a, b, prior)
        # every term is a fact with an outcome or a link (see _beta, _base_rate), which a
        # partial model holds too: answered for any partner, as the whole model does
        facts = [f for f in self.by_partner.get(partner, ()) if _on_topic(f, topic, self.config)]
        a, b = self._beta(facts, self._base_rate(facts), self.rel_means())
        return Reliability.from_beta(a, b, prior)

    def _whole(self, what: str, partner: str) -> None:
        if self.totals is not None and partner not in self.complete:
            raise ValueError(f"{what} needs every fact of {partner}: a partial model "
                             "without them cannot answer it")

    def first_time(self, partner: str) -> int | None:
        """When ``partner`` first asserted anything that counts (µs), or None."""
        if self.totals is not None:
            return self.totals.first(partner)
        return min((f.time for f in self.by_partner.get(partner, ()) if f.counts),
                   default=None)

    def important_good(self, partner: str) -> int:
        """``counts(partner).important_good``: high-importance counting assertions
        confirmed, or corroborated and not refuted (each needs an outcome or a link, so a
        partial model holds every one)."""
        if self.totals is None:
            return self.counts(partner).important_good
        means = self.rel_means()
        return sum(f.importance >= self.config.high_importance and (
            f.outcome == "confirmed" or (f.outcome != "refuted"
                                          and self.support(f, means).weight > 0))
                   for f in self.by_partner.get(partner, ()) if f.counts)

    def counts(self, partner: str) -> Counts:
        self._whole("counts", partner)
        if partner not in self._counts:
            self._counts[partner] = self._count(partner)
        return self._counts[partner]

    def _count(self, partner: str) -> Counts:
        out = Counts()
        means = self.rel_means()
        for f in self.by_partner.get(partner, ()):
            out.assertions += 1
            out.echoes += f.echo
            if not f.counts:
                out.not_counted += 1
                continue
            corroborated = self.support(f, means).weight > 0
            out.corroborated += corroborated
            out.confirmed += f.outcome == "confirmed"
            out.refuted += f.outcome == "refuted"
            out.expired += f.outcome == "expired"
            good = f.outcome == "confirmed" or (corroborated and f.outcome != "refuted")
            out.important_good += good and f.importance >= self.config.high_importance
        return out

    def first_reports(self, partner: str) -> list[tuple[Fact, int | None, bool]]:
        """P's assertions that were first (by intake order) on some claim: with the lead
        time over the next independent source (None if none yet), and whether confirmed."""
        self._whole("first reports", partner)
        out = []
        for f in self.by_partner.get(partner, ()):
            if not f.counts:
                continue
            firsts = [c for c in f.claims if min(self.by_claim[c], key=_order).id == f.id]
            if not firsts:
                continue
            later = [o.time for link, o in self._neighbours.get(f.id, ())
                     if link.independent and link.first == f.id and o.counts
                     and o.partner != f.partner and o.claims & set(firsts)]
            lead = min(later) - f.time if later else None
            out.append((f, lead, any(c in self.confirmed for c in firsts)))
        return out


_NO_SUPPORT = Support(0.0, (), ())


def _order(f: Fact) -> tuple[int, int]:
    return (f.seq, f.id)


def _pair_key(p: str, q: str) -> tuple[str, str]:
    return (p, q) if p <= q else (q, p)


def _on_topic(fact: Fact, topic: str, config: TrustConfig) -> bool:
    if topic == HIGH:
        return fact.importance >= config.high_importance
    return topic in fact.topics
