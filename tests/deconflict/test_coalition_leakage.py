"""Coalition deconfliction: one test per statement of docs/deconfliction.md (Coalition
deconfliction → What each party learns; Deviating parties), the deviations as attacks."""

from __future__ import annotations

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

    def __init__(self, spec: RunSpec, sets: Mapping[str, Sequence[Item]],
                 **kwargs: object) -> None:
        self.spec = spec
        self.parts = {n: Participant(spec, n, sets.get(n, ()), **kwargs)  # type: ignore[arg-type]
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


def spec(threshold: int = 2, mode: CoalitionMode = CoalitionMode.MEMBERSHIP) -> RunSpec:
    return new_run("us", ["de", "fr", "ru"], threshold, "observables", mode)


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
    opened = [nacl.public.SealedBox(run.reconstructor._key).decrypt(u)
              for u in uploads.values()]
    headers = {o[:6] + o[6:22] + o[54:63] for o in opened}  # magic, run, shape, mode
    assert len(headers) == 1


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


def test_limit_r_tests_its_own_items_below_threshold() -> None:
    """The documented limit: R knows the tags of its own items, so it can check every
    share against its own items' polynomials and count their holders, below T too."""
    s = spec(3)
    while s.reconstructor != "fr":  # fr holds a.example, which ru holds too (2 < T)
        s = spec(3)
    run = Run(s, SETS)
    run.ring()
    uploads = run.uploads()
    r = run.parts["fr"]
    k = r.items.index(dom("a")[0])
    coefs = _shares.coefficients(s.run_id, r._tags[k], 3)  # type: ignore[index]
    hits = 0
    for sealed in uploads.values():
        plain = nacl.public.SealedBox(run.reconstructor._key).decrypt(sealed)[63:]
        for off in range(0, len(plain), 32):
            sh = _shares.Share.from_bytes(plain[off:off + 32])
            y = sum(a * pow(sh.x, j + 1, _shares.PRIME) for j, a in enumerate(coefs))
            hits += y % _shares.PRIME == sh.y
    assert hits == 2  # R's own share and the other holder's: below T, yet counted


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
