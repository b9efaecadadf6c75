"""Canonical claims: what an object asserts, in a form two sources can agree on.

Three kinds of claim, each a short string:

* ``obs|<sco type>|<path>|<value>`` — an observable, from an SCO or from each ``=``
  comparison of a simple indicator pattern (:func:`detente.stix.simple_comparisons`);
  values are normalised (IP addresses compressed, ``/32`` dropped, domain names and e-mail
  addresses lower-cased, URL scheme and host lower-cased, hashes lower-cased).
* ``ent|<kind>|<name>`` — an entity named by a threat-actor, intrusion-set (both kind
  ``actor``), malware, tool, campaign, vulnerability, infrastructure, identity or location,
  one claim per name and alias; names are case-folded with punctuation and spaces removed.
* ``rel|<source claim>|<relationship type>|<target claim>`` — a relationship between the
  primary claims of its two ends (``id|<stix id>`` when an end is not stored here).

An object's *importance* (how much it matters if it is wrong) comes from its type, labels,
relationship type, the partner's own ``confidence`` and the analyst's overrides; its
*topics* (for per-topic reliability) from its type, labels, actors and regions.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from detente.stix.patterns import simple_comparisons
from detente.trust.config import TrustConfig

__all__ = ["CLAIMS", "Extracted", "claim_key", "extract", "extract_ahead", "from_ahead",
           "importance_of", "normalise_name", "normalise_value", "refs_of"]

#: looks up a referenced object's body (the store, in practice); None when unknown
Resolver = Callable[[str], Mapping[str, Any] | None]

_ENTITY_KIND = {
    "threat-actor": "actor", "intrusion-set": "actor", "malware": "malware", "tool": "tool",
    "campaign": "campaign", "vulnerability": "vulnerability", "identity": "identity",
    "location": "location", "infrastructure": "infrastructure",
}
_HASH_NAMES = {
    "MD5": "MD5", "SHA1": "SHA-1", "SHA256": "SHA-256", "SHA512": "SHA-512",
    "SHA3256": "SHA3-256", "SHA3512": "SHA3-512", "SSDEEP": "SSDEEP", "TLSH": "TLSH",
    "SHA224": "SHA-224", "SHA384": "SHA-384", "SHA3224": "SHA3-224", "SHA3384": "SHA3-384",
}
_HIGH_RELATIONSHIPS = frozenset({"attributed-to", "targets", "compromises", "impersonates"})
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
#: a dotted-quad IPv4 address in canonical form: ip_network(value) prints it unchanged
_PLAIN_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
                         r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])", re.ASCII)


@dataclass(frozen=True, slots=True)
class Extracted:
    claims: tuple[str, ...]
    importance: float
    topics: tuple[str, ...]


def claim_key(claim: str) -> str:
    """A fixed-size index key for a claim (claims such as URLs can be long)."""
    return hashlib.sha256(claim.encode()).hexdigest()[:40]


def normalise_name(name: str) -> str:
    return _NON_WORD.sub("", name.casefold())


def normalise_value(sco_type: str, path: str, value: str) -> str:
    """One observable value in canonical form; unparsable values are kept as given."""
    value = value.strip()
    if path != "value":
        return value.lower() if path.startswith("hashes.") else value
    if sco_type in ("ipv4-addr", "ipv6-addr"):
        if _PLAIN_IPV4.fullmatch(value):
            return value  # already what ip_network would print (no prefix, no zeros)
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError:
            return value.lower()
        single = net.prefixlen == net.max_prefixlen
        return str(net.network_address) if single else str(net)
    if sco_type in ("domain-name", "email-addr", "mac-addr"):
        return value.lower().rstrip(".")
    if sco_type == "url":
        try:
            parts = urlsplit(value)
            return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path,
                               parts.query, parts.fragment))
        except ValueError:
            return value
    return value


def _obs(sco_type: str, path: str, value: str) -> str:
    return f"obs|{sco_type}|{path}|{normalise_value(sco_type, path, value)}"


def _hash_path(name: str) -> str | None:
    canon = _HASH_NAMES.get(name.upper().replace("-", "").replace("_", ""))
    if canon is None:
        return None
    return f"hashes.{canon}" if canon.isalnum() else f"hashes.'{canon}'"


def _sco_claims(body: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    value = body.get("value")
    if isinstance(value, str) and value:
        out.append(_obs(str(body["type"]), "value", value))
    hashes = body.get("hashes")
    if isinstance(hashes, Mapping):
        for name, digest in hashes.items():
            path = _hash_path(str(name))
            if path is not None and isinstance(digest, str):
                out.append(_obs(str(body["type"]), path, digest))
    key = body.get("key")
    if body.get("type") == "windows-registry-key" and isinstance(key, str):
        out.append(_obs("windows-registry-key", "key", key.lower()))
    return out


def _indicator_claims(body: Mapping[str, Any]) -> list[str]:
    pattern = body.get("pattern")
    if body.get("pattern_type", "stix") != "stix" or not isinstance(pattern, str):
        return []
    found = simple_comparisons(pattern)
    return [_obs(t, p, v) for t, p, v in found or []]


def _entity_claims(body: Mapping[str, Any]) -> list[str]:
    kind = _ENTITY_KIND[str(body["type"])]
    names: list[object] = [body.get("name")]
    if kind == "location":
        names = [body.get("country") or body.get("name") or body.get("region")]
    names += list(body.get("aliases") or []) if isinstance(body.get("aliases"), list) else []
    out: list[str] = []
    for name in names:
        norm = normalise_name(name) if isinstance(name, str) else ""
        if norm and f"ent|{kind}|{norm}" not in out:
            out.append(f"ent|{kind}|{norm}")
    return out


def primary_claim(body: Mapping[str, Any], resolve: Resolver) -> str | None:
    found = _own_claims(body, resolve)
    return found[0] if found else None


def _end(ref: object, resolve: Resolver) -> str | None:
    if not isinstance(ref, str):
        return None
    target = resolve(ref)
    found = primary_claim(target, resolve) if target is not None and \
        target.get("type") not in ("relationship", "sighting") else None
    return found or f"id|{ref}"


def _relationship_claims(body: Mapping[str, Any], resolve: Resolver) -> list[str]:
    src = _end(body.get("source_ref"), resolve)
    dst = _end(body.get("target_ref"), resolve)
    rtype = body.get("relationship_type")
    if src is None or dst is None or not isinstance(rtype, str):
        return []
    return [f"rel|{src}|{rtype}|{dst}"]


def _own_claims(body: Mapping[str, Any], resolve: Resolver) -> list[str]:
    kind = body.get("type")
    if kind == "indicator":
        return _indicator_claims(body)
    if kind in _ENTITY_KIND:
        return _entity_claims(body)
    if kind == "relationship":
        return _relationship_claims(body, resolve)
    if kind == "sighting":
        target = resolve(str(body.get("sighting_of_ref", "")))
        return _own_claims(target, resolve) if target is not None else []
    return _sco_claims(body) if "value" in body or "hashes" in body or "key" in body else []


def importance_of(body: Mapping[str, Any], config: TrustConfig) -> float:
    """How much it matters if this assertion is wrong: 0.25 (trivial) to 4."""
    kind = str(body.get("type", ""))
    value = config.type_importance.get(kind, 0.75)
    labels: set[str] = set()
    for key in ("labels", "indicator_types"):
        items = body.get(key)
        if isinstance(items, list):
            for x in items:
                if isinstance(x, str):
                    labels.add(x.lower())
    if not labels.isdisjoint(config.high_labels) or \
            body.get("relationship_type") in _HIGH_RELATIONSHIPS:
        value *= 2.0
    if not labels.isdisjoint(config.low_labels):
        value *= 0.5
    confidence = body.get("confidence")
    if isinstance(confidence, int) and not isinstance(confidence, bool):
        value *= 1.25 if confidence >= 80 else 0.8 if confidence <= 20 else 1.0
    overrides = config.importance_overrides
    if overrides:
        for key in [f"type:{kind}", *(f"label:{x}" for x in sorted(labels))]:
            value *= overrides.get(key, 1.0)
    return max(0.25, min(4.0, value))


def _strings(value: object) -> list[str]:
    return [x for x in value if isinstance(x, str)] if isinstance(value, list) else []


def _topics(body: Mapping[str, Any], claims: list[str], config: TrustConfig) -> list[str]:
    out: list[str] = []
    if "type" in config.topics:
        out.append(f"type:{body.get('type')}")
    if "label" in config.topics:
        out += [f"label:{x.lower()}" for x in _strings(body.get("labels"))]
    for claim in claims:
        if claim.startswith("obs|"):
            continue  # an observable names no actor nor region
        for part in claim.split("|ent|") if claim.startswith("rel|") else [claim]:
            bits = part.removeprefix("rel|").removeprefix("ent|").split("|")
            if len(bits) >= 2 and bits[0] == "actor" and "actor" in config.topics:
                out.append(f"actor:{bits[1]}")
            if len(bits) >= 2 and bits[0] == "location" and "region" in config.topics:
                out.append(f"region:{bits[1]}")
    return list(dict.fromkeys(out))


def extract(body: Mapping[str, Any], resolve: Resolver, config: TrustConfig) -> Extracted:
    """The claims, importance and topics of one object (no claims: not an assertion)."""
    claims = list(dict.fromkeys(_own_claims(body, resolve)))
    return Extracted(tuple(claims), importance_of(body, config),
                     tuple(_topics(body, claims, config)))


#: the key of :func:`extract_ahead` in ``StixObject.ahead`` / ``StoredObject.ahead``
CLAIMS = "claims"
#: types whose claims name other objects (looked up in the store): never extracted ahead
_RESOLVED = frozenset({"relationship", "sighting"})


def extract_ahead(body: Mapping[str, Any], config: TrustConfig) -> list[Any] | None:
    """:func:`extract` where it needs no store (not a relationship nor a sighting), with
    each claim's :func:`claim_key`, as JSON: computed ahead in an ingest worker process
    (:mod:`detente.federation.exchange.pipe`); None: extract it when observed."""
    if body.get("type") in _RESOLVED:
        return None
    asked: list[str] = []
    found = extract(body, lambda ref: asked.append(ref), config)
    if asked:  # (not for these types) it would need the store: left to observe
        return None
    return [list(found.claims), found.importance, list(found.topics),
            [claim_key(c) for c in found.claims]]


def from_ahead(value: list[Any]) -> tuple[Extracted, dict[str, str]]:
    """What :func:`extract_ahead` computed: the claims, and claim key -> claim."""
    claims, importance, topics, keys = value
    return (Extracted(tuple(claims), importance, tuple(topics)),
            dict(zip(keys, claims, strict=True)))


def refs_of(body: Mapping[str, Any], vocabulary: frozenset[str]) -> list[str]:
    """Keys of the external references that name a *source* (a report), not a vocabulary."""
    out: list[str] = []
    for ref in body.get("external_references") or []:
        if not isinstance(ref, Mapping) or ref.get("source_name") in vocabulary:
            continue
        if isinstance(ref.get("url"), str):
            out.append("url|" + ref["url"].strip().lower())
        elif isinstance(ref.get("external_id"), str):
            out.append(f"id|{ref.get('source_name')}|{ref['external_id']}")
    return out
