"""Coalition deconfliction: one test per statement of docs/deconfliction.md (Coalition
deconfliction → What each party learns; Deviating parties; Coalitions of deviating parties),
the deviations as attacks. R is ``desk``, a node that holds no items, unless a test says
otherwise (T = 2 with R drawn among the participants)."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date

import nacl.exceptions
import nacl.public
import nacl.secret
import pytest

from detente.deconflict import (
    Budget,
    BudgetExceeded,
    Budgets,
    Item,
    MemoryBudgetBook,
    ProtocolError,
    ReplayError,
    _group,
    _shares,
)
from detente.deconflict.coalition import (
    ROLE_HINT,
    CoalitionMode,
    CoalitionResult,
    ContactPointer,
    Participant,
    Reconstructor,
    Relay,
    RunSpec,
    capacity_for,
    new_run,
    run_locally,
)


def dom(*names: str) -> list[Item]:
    return [Item("domain-name", f"{n}.example") for n in names]


C2 = dom("raqqa-c2")[0]
SETS = {"fr": dom("raqqa-c2", "a", "b", "fr-only"), "ru": dom("raqqa-c2", "a", "ru-only"),
        "us": dom("raqqa-c2", "b", "us-only"), "de": dom("de-only")}


class Run:
    """A run in memory, step by step, so a test can stand in for any party."""

    def __init__(self, spec: RunSpec, sets: Mapping[str, Sequence[Item]], *,
                 pointers: Mapping[str, Mapping[Item, ContactPointer]] | None = None,
                 **kwargs: object) -> None:
        self.spec = spec
        self.parts = {n: Participant(spec, n, sets.get(n, ()),  # type: ignore[arg-type]
                                     pointers=(pointers or {}).get(n), **kwargs)
                      for n in spec.participants}
        self.reconstructor = Reconstructor(spec)
        self.relay = Relay(spec)
        self.capacity = capacity_for(p.size for p in self.parts.values())

    def ring(self) -> None:
        for name, p in self.parts.items():
            elements = p.blinded()
            for other in self.spec.others(name):
                elements = self.parts[other].raise_for(name, elements)
            p.unblind(elements)

    def uploads(self) -> dict[str, bytes]:
        return {n: p.upload(self.capacity, self.reconstructor.public_key)
                for n, p in self.parts.items()}

    def finish(self, uploads: Mapping[str, bytes]) -> dict[str, CoalitionResult]:
        for name, sealed in uploads.items():
            self.relay.accept(name, sealed)
        results = self.relay.deliver(
            self.reconstructor.reconstruct(self.relay.batch(), self.capacity))
        return {n: self.parts[n].read(results[n]) for n in self.spec.participants}

    def opened(self, sealed: bytes) -> tuple[bytes, list[_shares.Share], list[bytes]]:
        """What R reads in an upload: header, shares, and (pointer mode) sealed pointers."""
        plain = nacl.public.SealedBox(self.reconstructor._key).decrypt(sealed)
        width = 32 + (POINTER_BLOB if self.spec.mode is CoalitionMode.POINTER else 0)
        body = plain[HEADER:]
        slots = [body[k:k + width] for k in range(0, len(body), width)]
        return plain[:HEADER], [_shares.Share.from_bytes(s) for s in slots], \
            [s[32:] for s in slots]


HEADER = 6 + 16 + 32 + 32 + 4 + 4 + 1  # magic, run, spec digest, result key, shape, mode
POINTER_BLOB = 24 + 16 + 256
DESK = "desk"


def spec(threshold: int = 2, mode: CoalitionMode = CoalitionMode.MEMBERSHIP, *,
         reconstructor: str | None = DESK) -> RunSpec:
    return new_run("us", ["de", "fr", "ru"], threshold, "observables", mode,
                   reconstructor=reconstructor)


def drawn(holder: str, threshold: int = 2) -> RunSpec:
    """A T = 2 spec whose run id draws ``holder`` (a participant) as R."""
    s = spec(threshold, reconstructor=None)
    while s.reconstructor != holder:
        s = spec(threshold, reconstructor=None)
    return s


def on_polynomial(coefs: Sequence[int], share: _shares.Share) -> bool:
    y = sum(a * pow(share.x, j + 1, _shares.PRIME) for j, a in enumerate(coefs))
    return y % _shares.PRIME == share.y


def candidate_tags(item: Item, run: Run) -> list[bytes]:
    """Every stand-in for an item's tag that a party holding none of the participants' run
    keys can compute: the item's encoding, its hash, its hash to the group, and that point
    under a key of its own (the real tag needs every participant's key)."""
    h = _group.hash_to_group([item.encoded()])
    return [item.encoded(), h, _group.multiply(_group.random_scalar(), h),
            hashlib.sha256(item.encoded()).digest()]


# -- what each party learns ------------------------------------------------------------


def test_others_see_only_blinded_points() -> None:
    """A co-holder raising our list cannot spot an item it holds: it sees neither H(x) nor
    anything it can compute from x with its key, and the same item differs between runs."""
    seen = []
    for _ in range(2):
        run = Run(spec(), SETS)
        blinded = _group.split(run.parts["us"].blinded())
        fr = run.parts["fr"]
        h = _group.hash_to_group([C2.encoded()])
        assert h not in blinded and _group.multiply(fr._key, h) not in blinded
        seen.append(set(blinded))
    assert not seen[0] & seen[1]


def test_uploads_have_one_shape_and_only_r_opens_them() -> None:
    """M sees N sealed boxes of one size whatever each set's size; only R's run key opens
    them; nothing in them names their sender."""
    run = Run(spec(3), {**SETS, "de": []})
    run.ring()
    uploads = run.uploads()
    assert len({len(u) for u in uploads.values()}) == 1
    stranger = nacl.public.SealedBox(nacl.public.PrivateKey.generate())
    for sealed in uploads.values():
        with pytest.raises(nacl.exceptions.CryptoError):
            stranger.decrypt(sealed)
    headers = [run.opened(u)[0] for u in uploads.values()]
    assert len({h[:54] + h[86:] for h in headers}) == 1  # magic, run, spec, shape, mode
    assert len({h[54:86] for h in headers}) == len(headers)  # fresh result keys only


def test_the_relay_shuffles_uniformly() -> None:
    """R cannot tell whose upload is whose: each participant's upload lands at every
    position of the batch."""
    s = new_run("us", ["fr", "ru"], 2, "observables")
    positions: dict[str, Counter[int]] = {n: Counter() for n in s.participants}
    for _ in range(300):
        relay = Relay(s)
        for n in s.participants:
            relay.accept(n, n.encode())
        for k, blob in enumerate(relay.batch()):
            positions[blob.decode()][k] += 1
    for counts in positions.values():
        assert set(counts) == {0, 1, 2} and min(counts.values()) > 60


@pytest.mark.parametrize("threshold", [2, 3, 4])
def test_r_learns_only_the_sizes_of_over_threshold_groups(threshold: int) -> None:
    """R learns how many uploads each over-threshold item spans, nothing about items held
    by fewer than T (their shares look like the padding)."""
    run = Run(spec(threshold), SETS)
    run.ring()
    run.finish(run.uploads())
    held = Counter(i for s in SETS.values() for i in s)
    assert run.reconstructor.learned == sorted(c for c in held.values() if c >= threshold)


def test_a_participant_learns_only_its_own_items_and_reads_only_its_result() -> None:
    results, _parts = run_locally(spec(3), SETS)
    assert results["fr"].matched == (C2,)  # a and b are held by two: T = 3 hides them
    assert results["de"].matched == ()
    assert DESK not in results  # R holds no items and learns no result
    run = Run(spec(), SETS)
    run.ring()
    uploads = run.uploads()
    for name, sealed in uploads.items():
        run.relay.accept(name, sealed)
    answers = run.relay.deliver(run.reconstructor.reconstruct(run.relay.batch(),
                                                              run.capacity))
    with pytest.raises(ProtocolError, match="not sealed to our result key"):
        run.parts["de"].read(answers["fr"])


def test_only_co_holders_open_a_pointer() -> None:
    """In pointer mode each holder of an over-threshold item gets the other holders'
    pointers; a pointer opens only under the item's tag."""
    pointers = {n: {i: ContactPointer(n, f"h-{n}", f"desk@{n}") for i in s}
                for n, s in SETS.items()}
    results, parts = run_locally(spec(3, CoalitionMode.POINTER), SETS, pointers=pointers)
    assert {p.node for p in results["us"].pointers[C2]} == {"fr", "ru"}
    assert set(results["fr"].pointers) == {C2}
    box = nacl.secret.SecretBox(_shares.pointer_key(parts["us"].spec.run_id, b"\x00" * 32))
    blob = nacl.secret.SecretBox(_shares.pointer_key(parts["us"].spec.run_id,
                                                     parts["us"]._tags[0])).encrypt(
        pointers["us"][SETS["us"][0]].to_plain())
    with pytest.raises(nacl.exceptions.CryptoError):
        box.decrypt(blob)  # another item's key


# -- the reconstructor ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(CoalitionMode))
def test_a_non_holding_r_cannot_test_any_item(mode: CoalitionMode) -> None:
    """The gap closed: R holds no items, so it knows no tag. Whatever stand-in for a tag it
    computes, for any item (below T, over T, or held by nobody), it finds no share on that
    item's polynomial and opens no pointer; with the real tag — which only the item's
    holders get from the ring — the same check would count the holders below T."""
    s = spec(3, mode)
    pointers = {n: {i: ContactPointer(n, f"h-{n}", f"desk@{n}") for i in items}
                for n, items in SETS.items()}
    run = Run(s, SETS, pointers=pointers)
    run.ring()
    opened = [run.opened(u) for u in run.uploads().values()]
    shares = [sh for _h, sh_list, _b in opened for sh in sh_list]
    blobs = [b for _h, _s, b_list in opened for b in b_list if b]
    universe = [*{i for items in SETS.values() for i in items}, *dom("nobody-holds")]
    for item in universe:
        for fake in candidate_tags(item, run):
            coefs = _shares.coefficients(s.run_id, fake, 3)
            assert not any(on_polynomial(coefs, sh) for sh in shares), item
            box = nacl.secret.SecretBox(_shares.pointer_key(s.run_id, fake))
            for blob in blobs:
                with pytest.raises(nacl.exceptions.CryptoError):
                    box.decrypt(blob)
    a = dom("a")[0]  # held by fr and ru: below T = 3
    real = run.parts["fr"]._tags[run.parts["fr"].items.index(a)]  # type: ignore[index]
    coefs = _shares.coefficients(s.run_id, real, 3)
    assert sum(on_polynomial(coefs, sh) for sh in shares) == 2  # what a tag would reveal


def test_a_non_holding_r_is_given_no_items_and_no_tags() -> None:
    """A node named R holds no items in the run: it cannot be a participant, no participant
    raises a list for it (so it can get no tag), and the relay takes no upload from it."""
    s = spec(3)
    with pytest.raises(ProtocolError, match="desk reconstructs this run"):
        Participant(s, DESK, dom("a"))
    with pytest.raises(ProtocolError, match="desk reconstructs this run"):
        run_locally(s, {**SETS, DESK: dom("a")})
    run = Run(s, SETS)
    probe = _group.hash_to_group([dom("a")[0].encoded()])
    for part in run.parts.values():
        with pytest.raises(ProtocolError, match="nobody raises a list for it"):
            part.raise_for(DESK, probe)
    with pytest.raises(ProtocolError, match="holds no items in this run"):
        run.relay.accept(DESK, b"an upload of its own")


def test_r_adding_an_upload_of_its_own_joins_no_group() -> None:
    """A deviating R that matches a fabricated upload of its own against the N real ones
    (shares of any items, on polynomials from whatever it can compute) finds exactly the
    honest groups: its shares join none."""
    s = spec(3)
    run = Run(s, SETS)
    run.ring()
    opened = [run.opened(u)[1] for u in run.uploads().values()]
    shape = _shares.shape_for(3, run.capacity)
    universe = {i for items in SETS.values() for i in items}
    fake: list[list[tuple[int, int, _shares.Share]]] = [[] for _ in range(shape.bins)]
    for item in universe:
        for k, tag in enumerate(candidate_tags(item, run)):
            b = _shares.item_bin(s.run_id, tag, shape.bins)
            share = _shares.make_share(_shares.coefficients(s.run_id, tag, 3))
            fake[b].append((len(opened), k, share))
    bins = [[(u, k, sh) for u, up in enumerate(opened) for k, sh in enumerate(up)
             if k // shape.load == b] for b in range(shape.bins)]
    honest = _shares.find_groups(bins, 3)
    deviant = _shares.find_groups([b + f for b, f in zip(bins, fake, strict=True)], 3)
    assert sorted(deviant) == sorted(honest) and len(honest) == 1  # C2 only


def test_at_t2_a_holding_r_learns_nothing_beyond_its_output() -> None:
    """T = 2 with R drawn among the participants: testing its own items against every
    share, R finds its own share alone for each item it holds alone (which it knew), and
    two or more shares exactly for the items its result flags (the group sizes it learns
    anyway): nothing about items held by fewer than T."""
    s = drawn("fr")
    run = Run(s, SETS)
    run.ring()
    uploads = run.uploads()
    shares = [sh for u in uploads.values() for sh in run.opened(u)[1]]
    results = run.finish(uploads)
    fr = run.parts["fr"]
    held = Counter(i for items in SETS.values() for i in items)
    for k, item in enumerate(fr.items):
        coefs = _shares.coefficients(s.run_id, fr._tags[k], 2)  # type: ignore[index]
        hits = sum(on_polynomial(coefs, sh) for sh in shares)
        assert hits == held[item]
        assert (hits >= 2) == (item in results["fr"].matched)
    assert run.reconstructor.learned == sorted(c for c in held.values() if c >= 2)


# -- an initiator that lies about roles ----------------------------------------------------


def test_every_participant_refuses_a_spec_with_a_holding_r_at_t3() -> None:
    """Fail closed at the protocol level: each participant reads the spec itself, so an
    initiator cannot make a holder reconstruct at T >= 3, reconstruct itself, leave R out,
    or pick at T = 2 a participant the run id does not draw."""
    honest = spec(3).to_json()
    lies = [{**honest, "reconstructor": "fr"},              # a holder, at T = 3
            {k: v for k, v in honest.items() if k != "reconstructor"},  # none, at T = 3
            {**honest, "reconstructor": "us"}]              # the relay itself
    for doc in lies:
        with pytest.raises(ProtocolError) as refused:
            RunSpec.from_json(doc)
        assert "--reconstructor NODE" in str(refused.value) or "relay" in str(refused.value)
    with pytest.raises(ProtocolError, match="needs a reconstructor that holds no items"):
        new_run("us", ["fr", "ru"], 3, "observables")
    two = drawn("fr").to_json()
    not_drawn = next(n for n in ("de", "ru") if n != two["reconstructor"])
    with pytest.raises(ProtocolError, match="is not the participant this run id draws"):
        RunSpec.from_json({**two, "reconstructor": not_drawn})
    assert "--reconstructor NODE" in ROLE_HINT


@pytest.mark.parametrize("lie", ["threshold", "participants", "reconstructor"])
def test_an_initiator_telling_parties_different_specs_aborts_the_run(lie: str) -> None:
    """Each upload carries the digest of the spec its participant agreed to: an initiator
    that tells R (or one participant) another threshold, another set of participants or
    another reconstructor has R refuse the uploads — nobody learns anything."""
    s = spec(3)
    told = {"threshold": {"threshold": 2},
            "participants": {"participants": ["de", "fr", "us"], "threshold": 3},
            "reconstructor": {"reconstructor": "it"}}[lie]
    other = RunSpec.from_json({**s.to_json(), **told})
    run = Run(s, SETS)
    run.reconstructor = Reconstructor(other)  # R was told `other`
    run.ring()
    uploads = run.uploads()
    batch = [uploads[name] for name in sorted(uploads)][:len(other.participants)]
    with pytest.raises(ProtocolError, match="another spec of this run"):
        run.reconstructor.reconstruct(batch, run.capacity)
    mixed = Run(s, SETS)  # fr was told `other`; R and the others the truth
    mixed.parts["fr"] = Participant(other, "fr", SETS["fr"])
    with pytest.raises(ProtocolError, match=r"made under another spec|not another participant"):
        mixed.ring()  # told other participants, fr refuses a list from outside its spec
        mixed.finish(mixed.uploads())


# -- coalitions of deviating parties -------------------------------------------------------


def test_r_colluding_with_a_participant_tests_that_participants_items_only() -> None:
    """R with a participant P: P hands R the tags of its own items (any it chose to put in
    its set, within the budgets), and R counts their holders below T — the former limit,
    now only with a colluding participant and only for P's items."""
    s = spec(3)
    run = Run(s, SETS)
    run.ring()
    shares = [sh for u in run.uploads().values() for sh in run.opened(u)[1]]
    fr = run.parts["fr"]
    counts = {}
    for k, item in enumerate(fr.items):
        coefs = _shares.coefficients(s.run_id, fr._tags[k], 3)  # type: ignore[index]
        counts[item] = sum(on_polynomial(coefs, sh) for sh in shares)
    held = Counter(i for items in SETS.values() for i in items)
    assert counts == {i: held[i] for i in SETS["fr"]}  # a.example: 2, below T, counted
    for item in SETS["ru"]:  # ru-only is not fr's: no tag, nothing to test
        if item not in SETS["fr"]:
            for fake in candidate_tags(item, run):
                coefs = _shares.coefficients(s.run_id, fake, 3)
                assert not any(on_polynomial(coefs, sh) for sh in shares)


def test_r_colluding_with_the_relay_learns_who_holds_each_over_threshold_item() -> None:
    """R with M: M's shuffle order names each upload, so each over-threshold group becomes
    the names of its holders (why R and M must not collude)."""
    run = Run(spec(3), SETS)
    run.ring()
    for name, sealed in run.uploads().items():
        run.relay.accept(name, sealed)
    batch = run.relay.batch()
    order = run.relay._order
    assert order is not None
    shape = _shares.shape_for(3, run.capacity)
    opened = [run.opened(u)[1] for u in batch]
    bins = [[(u, k, sh) for u, up in enumerate(opened) for k, sh in enumerate(up)
             if k // shape.load == b] for b in range(shape.bins)]
    groups = _shares.find_groups(bins, 3)
    assert [{order[u] for u, _slot in g} for g in groups] == [{"fr", "ru", "us"}]


def test_participants_colluding_without_r_compute_no_tag_of_an_item_they_lack() -> None:
    """Participants other than R pooling their run keys still miss the others' keys: the
    tag of an item is out of their reach (they learn their own outputs combined)."""
    run = Run(spec(3), SETS)
    run.ring()
    fr, ru = run.parts["fr"], run.parts["ru"]
    us = run.parts["us"]
    real = us._tags[us.items.index(C2)]  # type: ignore[index]
    h = _group.hash_to_group([C2.encoded()])
    pooled = _group.multiply(_group.scalar_product(fr._key, ru._key), h)
    assert pooled != real and fr._tags is not None and real in fr._tags
    de_only = run.parts["de"]._tags[0]  # type: ignore[index]
    assert de_only not in fr._tags and de_only not in (ru._tags or [])


# -- deviating parties -----------------------------------------------------------------


def test_a_wrong_key_only_loses_matches() -> None:
    """A participant that raises the others' lists with another key learns nothing (its
    items match nobody's) and makes no one see a false match."""
    run = Run(spec(), SETS)
    deviant = run.parts["fr"]
    wrong = _group.random_scalar()
    real = deviant.raise_for

    def raise_wrong(asker: str, elements: bytes) -> bytes:
        real(asker, elements)  # budget and replay bookkeeping as usual
        return _group.multiply(wrong, elements)

    deviant.raise_for = raise_wrong  # type: ignore[method-assign]
    run.ring()
    results = run.finish(run.uploads())
    held = Counter(i for s in SETS.values() for i in s)
    assert results["fr"].matched == ()
    for name, result in results.items():
        assert set(result.matched) <= {i for i in SETS[name] if held[i] >= 2}


def test_replayed_forged_and_foreign_uploads_are_refused() -> None:
    run = Run(spec(), SETS)
    run.ring()
    uploads = run.uploads()
    run.relay.accept("fr", uploads["fr"])
    with pytest.raises(ReplayError):
        run.relay.accept("fr", uploads["fr"])  # a second upload from one participant
    with pytest.raises(ProtocolError):
        run.relay.accept("it", uploads["fr"])  # not a participant
    batch = [uploads[n] for n in ("de", "fr", "ru", "us")]
    with pytest.raises(ReplayError, match="same result key"):
        run.reconstructor.reconstruct([batch[0], batch[0], batch[2], batch[3]], run.capacity)
    with pytest.raises(ProtocolError, match="not sealed"):
        run.reconstructor.reconstruct([b"\x00" * len(batch[0]), *batch[1:]], run.capacity)
    with pytest.raises(ProtocolError, match="5 uploads"):
        run.reconstructor.reconstruct([*batch, batch[0]], run.capacity)
    other = Run(spec(), SETS)
    other.ring()
    foreign = other.parts["de"].upload(other.capacity, run.reconstructor.public_key)
    with pytest.raises(ProtocolError, match="another run"):
        run.reconstructor.reconstruct([foreign, *batch[1:]], run.capacity)
    with pytest.raises(ProtocolError, match="shape"):
        run.reconstructor.reconstruct(batch, run.capacity * 2)
    results = run.reconstructor.reconstruct(batch, run.capacity)  # honest: still fine
    with pytest.raises(ReplayError, match="already"):
        run.reconstructor.reconstruct(batch, run.capacity)
    assert len(results) == 4


def test_budgets_cap_each_participant() -> None:
    book = MemoryBudgetBook()
    tight = Budgets(Budget(items_per_query=3, queries_per_day=1, max_set_ratio=10))
    run = Run(spec(), SETS, budgets=tight, book=book, today=date(2026, 12, 5))
    with pytest.raises(BudgetExceeded) as big:
        run.parts["ru"].raise_for("fr", run.parts["fr"].blinded())  # 4 items > 3
    assert big.value.reason == "items_per_query"
    listed = run.parts["ru"].blinded()
    run.parts["fr"].raise_for("ru", listed)
    with pytest.raises(ReplayError):
        run.parts["fr"].raise_for("ru", listed)  # one list per asker per run
    again = Run(spec(), SETS, budgets=tight, book=book, today=date(2026, 12, 5))
    with pytest.raises(BudgetExceeded) as daily:
        again.parts["fr"].raise_for("ru", again.parts["ru"].blinded())
    assert daily.value.reason == "queries_per_day"


def test_an_item_repeated_in_one_upload_counts_once() -> None:
    run = Run(spec(), SETS)
    cheat = run.parts["de"]
    cheat.items = [*cheat.items, *cheat.items]  # the same item in two slots
    run.ring()
    results = run.finish(run.uploads())
    assert results["de"].matched == ()


def test_a_relay_that_swaps_results_is_caught_by_the_victims() -> None:
    run = Run(spec(), SETS)
    run.ring()
    for name, sealed in run.uploads().items():
        run.relay.accept(name, sealed)
    answers = run.relay.deliver(run.reconstructor.reconstruct(run.relay.batch(),
                                                              run.capacity))
    with pytest.raises(ProtocolError):
        run.parts["fr"].read(answers["ru"])
    with pytest.raises(ProtocolError, match=r"not for this run|not sealed"):
        run.parts["ru"].read(b"\x00" * 80)
