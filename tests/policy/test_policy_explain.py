"""explain() and matrix(): "who can see this and why"."""

from __future__ import annotations

from tests.policy.policy_fixtures import FR, IR, RU, indicator, node, tlp, to

from detente.policy import Decision, Verdict, decide, explain, matrix


def test_explain_a_redacted_release() -> None:
    rel = to("fr", "ru", redact_below_tier={2: ["description"]}, attribution="must")
    d = decide(indicator(tlp("amber"), rel["id"]), RU, node(rel))
    assert explain(d) == [
        "ALLOW (redacted) — a redacted view may be released.",
        f"  because TLP:AMBER — only partners named by a releasability marking; ru is named by "
        f"detente releasability {rel['id']}.",
        f"  because detente releasability {rel['id']} — releasable to fr, ru; ru is named.",
        f"  because detente releasability {rel['id']} — description redacted below tier 2; "
        "ru has tier 1.",
        "  removed description",
        "  onward sharing: originator-approval; provider attribution: must",
    ]


def test_explain_a_denial() -> None:
    lines = explain(decide(indicator(tlp("red")), FR, node()))
    assert lines == [
        "DENY — the object is not released.",
        "  because TLP:RED — never released by a node.",
    ]
    assert explain(Decision.deny("no reason needed here.")) == [
        "DENY — the object is not released.",
        "  because no reason needed here.",
    ]


def test_matrix_answers_for_every_partner() -> None:
    rel = to("fr")
    rows = matrix(indicator(tlp("amber"), rel["id"]), [FR, RU, IR], node(rel))
    assert [(r.name, d.verdict) for r, d in rows] == [
        ("fr", Verdict.ALLOW),
        ("ru", Verdict.DENY),
        ("ir", Verdict.DENY),
    ]
    assert [d for _, d in rows] == [
        decide(indicator(tlp("amber"), rel["id"]), r, node(rel)) for r in (FR, RU, IR)
    ]
