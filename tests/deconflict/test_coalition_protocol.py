"""Coalition deconfliction, in memory: every participant's output equals plain set arithmetic
(over-threshold membership, and in pointer mode exactly the co-holders), for N 2–5, T 2–N,
with a reconstructor that holds no items (any T) or, at T = 2, one drawn among the
participants."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detente.deconflict import Item, ProtocolError
from detente.deconflict._shares import PRIME, Share, find_groups, shape_for
from detente.deconflict.coalition import (
    CoalitionMode,
    ContactPointer,
    RunSpec,
    capacity_for,
    new_run,
    roles_for,
    run_locally,
)

NAMES = ("de", "fr", "it", "ru", "us")
DESK = "desk"  # a reconstructor that holds no items
UNIVERSE = [Item("domain-name", f"c2-{i}.example") for i in range(8)]
MPSI = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def truth(sets: Mapping[str, Sequence[Item]], threshold: int) -> dict[str, set[Item]]:
    held = Counter(i for s in sets.values() for i in set(s))
    return {n: {i for i in s if held[i] >= threshold} for n, s in sets.items()}


def pointers_of(sets: Mapping[str, Sequence[Item]]) -> dict[str, dict[Item, ContactPointer]]:
    return {n: {i: ContactPointer(n, f"h-{n}-{i.value}", f"desk@{n}.example") for i in s}
            for n, s in sets.items()}


@st.composite
def coalitions(draw: st.DrawFn) -> tuple[RunSpec, dict[str, list[Item]]]:
    n = draw(st.integers(2, 5))
    threshold = draw(st.integers(2, n))
    names = NAMES[:n]
    max_size = 8 if threshold <= 3 else 4  # T >= 4 matching grows as load^(T-1)
    sets = {name: draw(st.lists(st.sampled_from(UNIVERSE), max_size=max_size, unique=True))
            for name in names}
    mode = draw(st.sampled_from(list(CoalitionMode)))
    desk = threshold >= 3 or draw(st.booleans())  # T >= 3: a non-holding R, always
    return new_run(names[0], names[1:], threshold, "observables", mode,
                   reconstructor=DESK if desk else None), sets


@MPSI
@given(coalitions())
def test_outputs_equal_plain_set_arithmetic(case: tuple[RunSpec, dict[str, list[Item]]]) -> None:
    spec, sets = case
    pointers = pointers_of(sets) if spec.mode is CoalitionMode.POINTER else None
    results, _parts = run_locally(spec, sets, pointers=pointers)
    expected = truth(sets, spec.threshold)
    assert set(results) == set(spec.participants)  # R, holding no items, learns no result
    for name, result in results.items():
        assert set(result.matched) == expected[name]
        if spec.mode is CoalitionMode.POINTER:
            for item in result.matched:
                holders = {n for n, s in sets.items() if item in s and n != name}
                assert {p.node for p in result.pointers[item]} == holders
        else:
            assert not result.pointers


def test_ten_participants() -> None:
    names = [f"n{i}" for i in range(10)]
    everyone = UNIVERSE[0]
    sets = {n: [everyone, UNIVERSE[1 + i % 3], Item("domain-name", f"own-{n}.example")]
            for i, n in enumerate(names)}
    for threshold in (2, 3):
        spec = new_run("n0", names[1:], threshold, "observables",
                       reconstructor="desk" if threshold == 3 else None)
        results, _ = run_locally(spec, sets)
        expected = truth(sets, threshold)
        assert all(set(results[n].matched) == expected[n] for n in names)


def test_run_specs_are_checked() -> None:
    for bad in ((("fr", "us"), 3), (("fr",), 2), (tuple(f"n{i}" for i in range(11)), 2),
                (("us", "fr"), 2), (("fr", "fr", "us"), 2)):
        with pytest.raises(ProtocolError):
            RunSpec(b"\x01" * 16, bad[0][0], bad[0], bad[1], "observables")
    with pytest.raises(ProtocolError, match="initiator"):
        RunSpec(b"\x01" * 16, "de", ("fr", "us"), 2, "observables")
    spec = new_run("us", ["fr", "ru"], 2, "names")
    assert RunSpec.from_json(spec.to_json()) == spec
    with pytest.raises(ProtocolError, match="malformed"):
        RunSpec.from_json({"run_id": "zz"})
    r, m = spec.roles
    assert r != m and {r, m} <= set(spec.participants) and spec.holding_reconstructor
    named = new_run("us", ["fr", "ru"], 3, "names", reconstructor="desk")
    assert RunSpec.from_json(named.to_json()) == named
    assert named.nodes == ("desk", "fr", "ru", "us") and not named.holding_reconstructor
    with pytest.raises(ProtocolError, match="reconstructor must be a node name"):
        RunSpec.from_json({**named.to_json(), "reconstructor": 7})
    with pytest.raises(ProtocolError, match="not a node name"):
        RunSpec.from_json({**named.to_json(), "reconstructor": "../x"})


def test_without_a_named_reconstructor_r_is_a_participant_but_the_relay_at_t2_only() -> None:
    seen = {roles_for(bytes([i]) * 16, NAMES, "us") for i in range(200)}
    assert seen == {(n, "us") for n in NAMES if n != "us"}
    for i in range(20):
        spec = RunSpec(bytes([i]) * 16, "us", NAMES, 2, "observables")
        assert spec.reconstructor == roles_for(spec.run_id, NAMES, "us")[0]
        with pytest.raises(ProtocolError, match="needs a reconstructor that holds no items"):
            RunSpec(bytes([i]) * 16, "us", NAMES, 3, "observables")


def test_shapes_never_depend_on_set_size() -> None:
    assert capacity_for([0, 3]) == 8 and capacity_for([9, 2]) == 16
    assert capacity_for([10_000]) == 16_384
    assert shape_for(2, 16_384).slots == 16_384
    big = shape_for(3, 16_384)
    assert big.bins > 1 and big.slots >= 16_384


def test_matching_finds_groups_from_distinct_uploads_only() -> None:
    coefs = (5, 7)  # P(X) = 5X + 7X^2, T = 3

    def share(x: int) -> Share:
        return Share(x, (coefs[0] * x + coefs[1] * x * x) % PRIME)

    two_uploads = [[(0, 0, share(11)), (0, 1, share(12)), (1, 0, share(13))]]
    assert find_groups(two_uploads, 3) == []  # 3 shares, but two from one upload
    three = [[(0, 0, share(11)), (1, 0, share(13)), (2, 0, share(17)), (2, 1, Share(3, 4))]]
    assert find_groups(three, 3) == [[(0, 0), (1, 0), (2, 0)]]
