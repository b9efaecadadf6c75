"""Properties of decide (hypothesis): fail closed, no leak, monotone in tier, deterministic."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.policy.policy_fixtures import indicator, node

from detente.policy import TLP2_IDS, Recipient, Verdict, decide, matrix, releasability_marking

UNKNOWN_IDS = [f"marking-definition--{i:08x}-0000-4000-8000-000000000000" for i in range(4)]
STATEMENT = {
    "type": "marking-definition",
    "spec_version": "2.1",
    "id": "marking-definition--ffffffff-0000-4000-8000-000000000000",
    "created": "2020-01-01T00:00:00.000Z",
    "definition_type": "statement",
    "definition": {"statement": "Copyright"},
}

recipients = st.builds(
    Recipient,
    name=st.sampled_from(["fr", "ru", "ir", "de"]),
    identity_id=st.none() | st.just("identity--22222222-2222-4222-8222-222222222222"),
    communities=st.frozensets(st.sampled_from(["coalition", "eu", "other"]), max_size=2),
    tier=st.integers(0, 4),
)
rel_markings = st.builds(
    releasability_marking,
    releasable_to=st.none()
    | st.lists(st.sampled_from(["fr", "ru", "coalition"]), min_size=1, max_size=2, unique=True),
    min_tier=st.none() | st.integers(0, 4),
    onward=st.sampled_from(["allowed", "originator-approval", "denied"]),
)


@given(
    refs=st.lists(st.sampled_from(UNKNOWN_IDS) | st.just(STATEMENT["id"]), max_size=3),
    rel=rel_markings,
    with_rel=st.booleans(),
    who=recipients,
    origin=st.none() | st.just("fr"),
)
def test_a_no_known_tlp_and_no_default_never_allows(
    refs: list[str], rel: dict[str, Any], with_rel: bool, who: Recipient, origin: str | None
) -> None:
    if with_rel:
        refs = [*refs, rel["id"]]
    d = decide(indicator(*refs), who, node(STATEMENT, rel, origin=origin))
    assert d.verdict is Verdict.DENY


LABELS = ["L0-x1", "L1-x2", "L2-x3", "L3-x4"]
SELECTORS = ["description", "name", "labels.[0]", "labels.[1]", "labels.[2]", "labels.[3]"]
VALUES = {
    "description": "DESC-secret",
    "name": "NAME-secret",
    **{f"labels.[{i}]": v for i, v in enumerate(LABELS)},
}
granular = st.lists(
    st.tuples(
        st.sampled_from(["clear", "green", "amber", "red"]),
        st.lists(st.sampled_from(SELECTORS), min_size=1, max_size=3, unique=True),
    ),
    max_size=4,
)
redactions = st.dictionaries(
    st.integers(0, 4),
    st.lists(st.sampled_from(SELECTORS), min_size=1, max_size=3, unique=True),
    max_size=3,
)


def _covered(
    gms: list[tuple[str, list[str]]], table: dict[int, list[str]], who: Recipient, shares: bool
) -> set[str]:
    """Selectors this recipient may not see: the ground truth, written independently."""
    covered = set()
    for level, selectors in gms:
        if level in ("amber", "red") or (level == "green" and not shares):
            covered.update(selectors)
    for tier, selectors in table.items():
        if who.tier < tier:
            covered.update(selectors)
    return covered


@given(gms=granular, table=redactions, who=recipients)
def test_b_no_view_contains_what_a_denying_marking_covers(
    gms: list[tuple[str, list[str]]], table: dict[int, list[str]], who: Recipient
) -> None:
    extra = {"redact_below_tier": table} if table else {"min_tier": 0}
    rel = releasability_marking(**extra)  # type: ignore[arg-type]
    obj = indicator(
        TLP2_IDS["clear"],
        rel["id"],
        description=VALUES["description"],
        name=VALUES["name"],
        labels=list(LABELS),
        granular_markings=[{"marking_ref": TLP2_IDS[lv], "selectors": sels} for lv, sels in gms]
        or None,
    )
    if not gms:
        del obj["granular_markings"]
    d = decide(obj, who, node(rel))
    covered = _covered(gms, table, who, bool(who.communities & {"coalition"}))
    if d.view is None:
        assert d.verdict is Verdict.DENY
        return
    text = json.dumps(d.view)
    for selector in covered:
        assert VALUES[selector] not in text, selector
    assert (d.verdict is Verdict.ALLOW_REDACTED) == bool(d.removed)


@given(
    min_tier=st.none() | st.integers(0, 4),
    table=redactions | st.just({1: ["pattern"]}),
    level=st.sampled_from(["clear", "green"]),
    who=recipients,
    raise_by=st.integers(1, 4),
)
def test_c_raising_the_tier_never_takes_anything_away(
    min_tier: int | None, table: dict[int, list[str]], level: str, who: Recipient, raise_by: int
) -> None:
    rel = releasability_marking(
        min_tier=min_tier if min_tier is not None or table else 0, redact_below_tier=table or None
    )
    obj = indicator(TLP2_IDS[level], rel["id"], labels=list(LABELS))
    low = decide(obj, who, node(rel))
    higher = Recipient(who.name, who.identity_id, who.communities, min(4, who.tier + raise_by))
    high = decide(obj, higher, node(rel))
    if low.allowed:
        assert high.allowed
        assert set(high.removed) <= set(low.removed)


objects = st.one_of(
    st.builds(
        lambda refs: indicator(*refs),
        st.lists(st.sampled_from([*TLP2_IDS.values(), *UNKNOWN_IDS]), max_size=3),
    ),
    st.dictionaries(
        st.sampled_from(["type", "id", "object_marking_refs", "granular_markings"]),
        st.none() | st.text(max_size=3) | st.lists(st.text(max_size=3), max_size=2),
    ),
    st.builds(
        lambda refs, gms: indicator(*refs, granular_markings=gms),
        st.lists(st.sampled_from(list(TLP2_IDS.values())), max_size=2),
        st.lists(
            st.fixed_dictionaries(
                {
                    "marking_ref": st.sampled_from([*TLP2_IDS.values(), *UNKNOWN_IDS])
                    | st.integers(),
                    "selectors": st.lists(
                        st.sampled_from(
                            [
                                *SELECTORS,
                                "pattern",
                                "labels.[9]",
                                "x.[0]",
                                "kill_chain_phases.[0]",
                                "[0]",
                                "labels[0]",
                            ]
                        ),
                        max_size=3,
                    ),
                }
            ),
            max_size=3,
        ),
    ),
)


@settings(max_examples=200)
@given(
    obj=objects,
    who=recipients,
    default=st.sampled_from([None, "clear", "green", "amber"]),
    origin=st.none() | st.just("fr"),
)
def test_d_e_decide_is_deterministic_and_denials_explain_themselves(
    obj: dict[str, Any], who: Recipient, default: str | None, origin: str | None
) -> None:
    ctx = node(default_tlp=default, origin=origin)
    first = decide(obj, who, ctx)
    assert decide(obj, who, ctx) == first
    assert matrix(obj, [who, who], ctx) == [(who, first), (who, first)]
    if first.verdict is Verdict.DENY:
        assert first.view is None
        assert first.reasons and all(r.strip() for r in first.reasons)
    else:
        assert first.view is not None and first.reasons
