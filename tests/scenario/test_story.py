"""The coalition scenario is the integration test of everything: assert its outcomes."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from detente.scenario.demo import run_demo
from detente.scenario.story import HELD_BACK_IP, Outcome


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> tuple[Outcome, Path]:
    out = tmp_path_factory.mktemp("demo")
    lines: list[str] = []
    return run_demo(out, lines.append), out


def test_russia_earns_a_tier_and_its_views_widen(played: tuple[Outcome, Path]) -> None:
    o, _ = played
    tiers = [t for _, t, _ in o.ru_trust]
    assert tiers[0] == 1, "Russia starts on probation"
    assert max(tiers) >= 2, "corroborated and confirmed reporting raises Russia's tier"
    assert o.ru_holds_from_us[-1] > o.ru_holds_from_us[0], "what Russia receives widens"


def test_circular_reporting_is_flagged(played: tuple[Outcome, Path]) -> None:
    o, _ = played
    assert o.laundering_flagged, "Russia's re-issue of U.S. indicators is an echo"
    assert o.echoes_flagged >= 2


def test_deception_is_held_then_refuted(played: tuple[Outcome, Path]) -> None:
    o, _ = played
    assert o.deception_credibility is not None and o.deception_credibility >= 3
    tier_before = next(t for s, t, _ in o.ru_trust if s == "round 2")
    assert o.ru_tier_after_refutation is not None
    assert o.ru_tier_after_refutation < tier_before, "a refuted important lie costs a tier"


def test_the_refutation_reaches_russia_and_frances_relayed_copy_is_withdrawn(
        played: tuple[Outcome, Path]) -> None:
    o, _ = played
    assert o.fr_held_relayed_lie, "the U.S. had relayed Russia's report to France"
    assert o.refutation_to == ["fr", "ru"], "the source and the partner we relayed it to"
    assert o.refutation_reached == ["ru", "fr"]
    assert o.relayed_copy_withdrawn, "a refuted report is never relayed onward bare"
    assert o.ru_sees and o.ru_sees[0].startswith("us disputes: No such server")


def test_policy_holds_across_nodes(played: tuple[Outcome, Path]) -> None:
    o, _ = played
    assert not o.onward_denied_reached_ru, "France never passes onward-denied U.S. material"
    first = o.received[0]
    assert first["fr"]["us"] > first["ru"]["us"], "France, trusted, receives more than Russia"


def test_deconfliction_finds_the_conflict_and_only_it(played: tuple[Outcome, Path]) -> None:
    o, _ = played
    assert {c["partner"] for c in o.conflicts} == {"ru"}, "Raqqa conflicts with Russia only"
    assert all(c["contact"] for c in o.conflicts)
    assert o.alignment == 2 and o.alignment_sent > o.alignment


def test_the_leak_is_traced_to_russia(played: tuple[Outcome, Path]) -> None:
    o, _ = played
    assert o.leak_suspects == ["ru"]


def test_an_rfi_reaches_russia_only_and_its_answer_is_credited(
    played: tuple[Outcome, Path]
) -> None:
    o, _ = played
    assert o.rfi_answered and o.rfi_credited_at_fr == 1
    assert not o.rfi_reached_us, "the question went to Russia only"


def test_priority_held_back_is_proved_later(played: tuple[Outcome, Path]) -> None:
    o, _ = played
    assert o.priority_certified and o.priority_before_france


def test_every_ledger_verifies_and_credit_is_given(played: tuple[Outcome, Path]) -> None:
    o, _ = played
    assert len(o.ledgers) == 6 and all(o.ledgers.values()), o.ledger_problems
    assert not o.ledger_problems
    assert o.credit["fr"]["corroborated"] > 0


def test_coalition_learns_the_shared_raqqa_c2_and_nothing_else(
        played: tuple[Outcome, Path]) -> None:
    o, out = played
    assert o.coalition_learned == {n: [f"ipv4-addr:{HELD_BACK_IP}"]
                                   for n in ("us", "fr", "ru")}
    assert o.coalition_recorded == {"us": True, "fr": True, "ru": True, "desk": True}
    desk = o.coalition_reconstructor  # a fourth node, holding no items, reconstructed
    assert desk["reconstructor"] == "desk" and desk["reconstructed"] is True
    assert desk["holds_items"] is False and desk["participants"] == ["fr", "ru", "us"]
    assert desk["groups"] == 1 and desk["local_size"] is None and desk["matches"] is None
    assert desk["outcome"] == "completed" and HELD_BACK_IP not in str(desk)
    html = (out / "report.html").read_text()
    assert "Coalition deconfliction (threshold 3" in html and "desk, holds no items" in html


def test_report_and_homes_are_left_for_the_ui(played: tuple[Outcome, Path]) -> None:
    _, out = played
    html = (out / "report.html").read_text()
    assert "<svg" in html and "Trust over time" in html and "Tehran" in html
    assert "Opinions: the deceptive report refuted" in html and "us disputes" in html
    assert orjson.loads((out / "outcome.json").read_bytes())["leak_suspects"] == ["ru"]
    for name in ("us", "fr", "ru"):
        assert (out / name / "detente.toml").exists()
