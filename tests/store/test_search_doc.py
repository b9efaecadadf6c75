"""The indexed text of an object is exactly what the plain, unoptimised rules make of it.

``doc_of``, ``words`` and ``expand_term`` sit on the ingest hot path and take shortcuts
(ASCII text split by a translation table, plain IPv4 addresses not re-parsed, one pass
over the body); the reference below is the straightforward reading of the rules
(``store/search.py`` before the shortcuts), and both must agree on any input."""

from __future__ import annotations

import hashlib
import ipaddress
import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from detente.stix.vocab import tlp_level
from detente.store.search import doc_of, expand_term, normalise_term, words

_WORD = re.compile(r"[^\W_]+")
_LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'")
_IPISH = re.compile(r"[0-9a-f.:/%]{2,64}")
_TEXT = ("description", "abstract", "content", "explanation", "opinion", "context")
_NAMES = ("name", "value", "display_name", "path", "subject", "number")
_LISTS = ("aliases", "x_mitre_aliases", "labels", "indicator_types", "malware_types",
          "threat_actor_types", "tool_types", "roles", "goals", "report_types",
          "infrastructure_types")
_TLP = ("red", "amber+strict", "amber", "green", "clear")


def ref_words(text: str) -> list[str]:
    folded = text.lower()
    if not folded.isascii():
        folded = "".join(c for c in unicodedata.normalize("NFKD", folded)
                         if not unicodedata.combining(c))
    return _WORD.findall(folded)


def ref_refang(value: str) -> str:
    v = value.strip().strip("\"'<>()").lower()
    if "[" in v or "(" in v:
        v = v.replace("[.]", ".").replace("(.)", ".").replace("[:]", ":").replace("[@]", "@")
    if v.startswith(("hxxp://", "hxxps://")):
        v = "http" + v[4:]
    return v.rstrip(".")


def ref_normalise(value: str) -> str:
    v = ref_refang(value)
    if not _IPISH.fullmatch(v):
        return v
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        pass
    try:
        net = ipaddress.ip_network(v, strict=False)
    except ValueError:
        return v
    return str(net.network_address) if net.num_addresses == 1 else str(net)


def ref_suffixes(host: str) -> list[str]:
    labels = host.split(".")
    if len(labels) < 2 or not all(labels):
        return []
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


def ref_expand(value: str) -> list[str]:
    term = ref_normalise(value)
    if not term:
        return []
    out = [term]
    host = ""
    if "://" in term:
        try:
            host = urlsplit(term).hostname or ""
        except ValueError:
            host = ""
    elif "@" in term and " " not in term:
        host = term.rsplit("@", 1)[1]
    elif re.fullmatch(r"[a-z0-9_-]+(\.[a-z0-9_-]+)+", term) and not term[-1].isdigit():
        host = term
    if host:
        out.extend(ref_suffixes(host) if host != term else ref_suffixes(host)[1:])
        if host != term and host not in out:
            out.insert(1, host)
    return out


def ref_token(term: str) -> str:
    return "x" + hashlib.blake2b(term.encode(), digest_size=8).hexdigest()


def ref_marking(body: dict[str, Any]) -> str:
    refs = [r for r in body.get("object_marking_refs") or [] if isinstance(r, str)]
    levels = {tlp_level(r) for r in refs}
    for level in _TLP:
        if level in levels:
            return level
    return refs[0] if refs else ""


def ref_display(body: dict[str, Any]) -> str:
    for key in ("name", "value", "pattern", "display_name", "path", "subject"):
        value = body.get(key)
        if value:
            return str(value)[:300]
    if body.get("type") == "relationship":
        return (f"{body.get('source_ref', '?')} {body.get('relationship_type', '')} "
                f"{body.get('target_ref', '?')}")
    return str(body.get("id", ""))


def ref_doc(body: dict[str, Any]) -> tuple[str, str, str, str]:
    terms: list[str] = []
    sco = "created" not in body
    name_text: list[str] = []
    prose: list[str] = []
    for key in _NAMES:
        value = body.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            name_text.append(str(value))
            if sco and key in ("value", "name", "path"):
                terms.append(str(value))
    for key in _LISTS:
        for item in body.get(key) or []:
            if isinstance(item, str):
                name_text.append(item)
    hashes = body.get("hashes")
    if isinstance(hashes, dict):
        terms.extend(str(h) for h in hashes.values())
    for ref in body.get("external_references") or []:
        if isinstance(ref, dict):
            if ref.get("external_id"):
                name_text.append(str(ref["external_id"]))
                terms.append(str(ref["external_id"]))
            if ref.get("url"):
                terms.append(str(ref["url"]))
    pattern = body.get("pattern")
    if isinstance(pattern, str):
        prose.append(pattern)
        terms.extend(m.group(1).replace("\\'", "'") for m in _LITERAL.finditer(pattern))
    for key in _TEXT:
        value = body.get(key)
        if isinstance(value, str):
            prose.append(value)
    tokens = sorted({ref_token(t) for raw in terms if raw for t in ref_expand(raw)})
    names = " ".join([*ref_words(" ".join(name_text)), *tokens])
    doc = " ".join(ref_words(" ".join(prose)[:100_000]))
    d = (ref_display(body), ref_marking(body), names, doc)
    return tuple(f.replace("\x00", " ") for f in d)  # type: ignore[return-value]


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40) | \
    st.sampled_from(["Évasion défensive", "C2 beacon_ing", "x\x00y", "İstanbul", "K",
                     "ﬁle", "a-b_c.d", "½ ²", "٣ arabic digits", ""])
_observable = st.sampled_from([
    "198.51.100.7", "198.51.100.7/32", "010.1.2.3", "10.0.0.0/8", "2001:DB8::1",
    "2001:db8:0:0:0:0:0:1/128", "hxxps://c2[.]Example.net/gate.php", "ops@Example.NET",
    "c2.example.net.", "example", "1.2.3", "256.1.1.1", "a..b", "[::1]", "http://[::1]:80/",
    "http://[bad", "FOO.bar-baz.example.org", "0.0.0.0", "255.255.255.255", "1.2.3.4.5",
    "d41d8cd98f00b204e9800998ecf8427e", "T1059.001", "x_y.z1", "192.168.1.1%eth0",
    # neither dot nor colon: never an address or a network (the hash shortcut)
    "10/8", "ffff/16", "ff%eth0", "0", "12345", "a" * 64 + "0", "0" * 64,
]) | _text


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"type": draw(st.sampled_from(["indicator", "ipv4-addr",
                                                           "relationship", "malware"])),
                            "id": "x--1"}
    if draw(st.booleans()):
        body["created"] = "2025-01-01T00:00:00Z"
    for key in draw(st.lists(st.sampled_from(_NAMES + _TEXT), max_size=4)):
        body[key] = draw(_observable | st.integers(-5, 5) | st.booleans() | st.none())
    for key in draw(st.lists(st.sampled_from(_LISTS), max_size=3)):
        body[key] = draw(st.lists(_text | st.integers(), max_size=3) | st.none())
    if draw(st.booleans()):
        body["pattern"] = "[x:value = '" + draw(_observable).replace("'", "\\'") + \
            "'] AND [y:value = '" + draw(_observable).replace("'", "\\'") + "']"
    if draw(st.booleans()):
        body["hashes"] = draw(st.dictionaries(st.sampled_from(["MD5", "SHA-256"]), _observable))
    if draw(st.booleans()):
        body["external_references"] = draw(st.lists(st.fixed_dictionaries(
            {}, optional={"external_id": _observable, "url": _observable,
                          "source_name": _text}) | st.integers(), max_size=2))
    if draw(st.booleans()):
        body["object_marking_refs"] = draw(st.lists(st.sampled_from([
            "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
            "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
            "marking-definition--x"]) | st.integers(), max_size=3))
    return body


@settings(max_examples=400, deadline=None)
@given(bodies())
def test_doc_of_equals_the_reference_rules(body: dict[str, Any]) -> None:
    d = doc_of(body)
    assert (d.name, d.marking, d.names, d.doc) == ref_doc(body)


@settings(max_examples=400, deadline=None)
@given(_text)
def test_words_equal_the_regex_rule(text: str) -> None:
    assert words(text) == ref_words(text)


@settings(max_examples=300, deadline=None)
@given(_observable)
def test_terms_equal_the_reference_rules(value: str) -> None:
    assert normalise_term(value) == ref_normalise(value)
    assert expand_term(value) == ref_expand(value)


def test_generated_indicators_index_as_the_reference_does() -> None:
    import random

    rng = random.Random(3)
    for n in range(300):
        ip = f"{rng.randint(0, 300)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{n}"
        body = {"type": "indicator", "id": "indicator--1", "created": "2025-01-01T00:00:00Z",
                "name": f"C2 {n}", "description": "beaconing from infected hosts",
                "labels": ["c2"], "pattern": f"[ipv4-addr:value = '{ip}'] OR "
                f"[url:value = 'https://h{n}.example.org/gate.php?id={n}']",
                "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-"
                                        "dfca5abac2bb"]}
        d = doc_of(body)
        assert (d.name, d.marking, d.names, d.doc) == ref_doc(body)


def test_pattern_literals_equal_the_alternation_rule() -> None:
    """The literal pattern is unrolled for speed: on every short string over the
    characters that matter it finds what ``'((?:[^'\\\\]|\\\\.)*)'`` finds."""
    import itertools

    from detente.store.search import _LITERAL as fast

    for n in range(8):
        for chars in itertools.product("'\\a\n", repeat=n):
            text = "".join(chars)
            assert fast.findall(text) == _LITERAL.findall(text), text
