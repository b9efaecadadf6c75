"""Echo detection rules, without HTTP: exact id, re-issued pattern or name, updates and
unrelated objects are not echoes, hostile input never raises."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from detente.federation.exchange.echo import EchoIndex, content_keys

V = "2025-03-01T10:00:00.000000000Z"


def _index() -> EchoIndex:
    index = EchoIndex("fr")
    index.released.add(("indicator--a", V))
    index.released.add(("marking-definition--m", V))
    for key in content_keys({"type": "indicator", "pattern": "[ipv4-addr:value = '1.2.3.4']"}):
        index.by_content[key] = "indicator--a"
    for key in content_keys({"type": "threat-actor", "name": "Islamic State"}):
        index.by_content[key] = "threat-actor--t"
    return index


def _ind(oid: str, pattern: str, modified: str = "2025-03-01T10:00:00Z") -> dict[str, Any]:
    return {"type": "indicator", "id": oid, "modified": modified, "pattern": pattern}


def test_exact_id_and_version_is_an_echo() -> None:
    echo = _index().match(_ind("indicator--a", "[x:y = 'z']"))
    assert echo is not None and echo.how == "id" and echo.by_id


def test_marking_definition_back_by_id_is_support_material() -> None:
    echo = _index().match({"type": "marking-definition", "id": "marking-definition--m",
                           "created": "2025-03-01T10:00:00Z"})
    assert echo is not None and echo.how == "support"


def test_reissued_pattern_is_an_echo_whatever_the_spacing_and_order() -> None:
    echo = _index().match(_ind("indicator--b", "[ipv4-addr:value   =  '1.2.3.4']"))
    assert echo is not None and echo.how == "pattern" and echo.echo_of == "indicator--a"
    assert echo.flags == {"echo": True, "echo_of": "indicator--a", "echo_match": "pattern"}


def test_reissued_name_is_an_echo() -> None:
    echo = _index().match({"type": "threat-actor", "id": "threat-actor--x",
                           "name": "islamic-state", "modified": "2025-01-01T00:00:00Z"})
    assert echo is not None and echo.how == "name" and echo.echo_of == "threat-actor--t"


def test_updates_and_unrelated_objects_are_not_echoes() -> None:
    index = _index()
    # a later version of the same id: an update by its creator
    assert index.match(_ind("indicator--a", "[ipv4-addr:value = '1.2.3.4']",
                            "2025-04-01T00:00:00Z")) is None
    assert index.match(_ind("indicator--c", "[ipv4-addr:value = '5.6.7.8']")) is None
    assert index.match({"type": "identity", "id": "identity--i", "name": "Islamic State"}) is None


def test_nothing_released_means_no_echo() -> None:
    assert EchoIndex("ru").match(_ind("indicator--a", "[ipv4-addr:value = '1.2.3.4']")) is None


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.sampled_from(["id", "type", "pattern", "name",
                                                       "modified", "created"]) | st.text(),
                                      inner, max_size=5), max_leaves=12))
def test_hostile_input_never_raises(body: Any) -> None:
    _index().match(body)


def test_the_index_of_class_views_is_the_index_of_the_partners_own_views(
        tmp_path: Path) -> None:
    """Built from the class views (no view derived again): the same released versions
    and content keys as from the fingerprinted views the partner received — the marks
    (list order, reworded prose) never touch a type, a pattern or a name."""
    import base64
    import random

    from bench._fpsim import synthetic_report
    from nacl.signing import SigningKey

    from detente.node import Node
    from detente.release import iter_release_records
    from detente.stix.validate import validate
    from detente.stix.vocab import TLP_2_0_IDS
    from detente.store import Provenance

    node = Node.init(tmp_path / "us", "us", communities="coalition")
    try:
        node.partners.add("fr", url="http://127.0.0.1:9001", tier=3,
                          public_key=base64.b64encode(
                              bytes(SigningKey.generate().verify_key)).decode(),
                          communities=frozenset({"coalition"}))
        objects = [dict(o, object_marking_refs=[TLP_2_0_IDS["green"]])
                   for o in synthetic_report(random.Random(3), 24)
                   if o.get("type") != "marking-definition"]
        node.store.put_many([validate(o) for o in objects], Provenance())
        node.releaser.catch_up("fr")
        derived = list(iter_release_records(node.store.engine, partner="fr"))
        assert any(r.fingerprint_id for r in derived)
        plain = [r.view_bytes for r in iter_release_records(node.store.engine,
                                                            partner="fr", derive=False)]
        assert any(r.view_bytes != cv for r, cv in zip(derived, plain, strict=True))
        expected = EchoIndex("fr")
        for r in derived:
            expected.released.add((r.object_id, r.version))
            for key in content_keys(r.view):
                expected.by_content.setdefault(key, r.object_id)
        built = EchoIndex.build(node.store, "fr")
        assert built.released == expected.released
        assert built.by_content == expected.by_content
    finally:
        node.close()
