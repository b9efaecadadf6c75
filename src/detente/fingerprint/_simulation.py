"""A seeded synthetic world and the collusion attacks, shared by the tests and the benchmark.

Not part of the public surface.  The synthetic reports look like ISIS-in-Syria intelligence:
indicators with prose descriptions, threat actors with aliases and roles, malware, locations
and a report whose ``object_refs`` list them.  ``random.Random`` is fine here: nothing
secret is drawn from it (the node secret is a parameter).

The adversary knows the scheme and the public variant dictionary but not the secret, and
obeys the marking assumption only where it must: wherever the colluders' copies differ it
picks per position (majority, minority, random) or per object (interleaving).
"""

from __future__ import annotations

import copy
import random
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any, TypeVar

from detente.fingerprint.ch_lists import UNORDERED_LISTS
from detente.fingerprint.ch_text import keyed_occurrences
from detente.fingerprint.fingerprinter import Fingerprinter
from detente.fingerprint.records import Release
from detente.fingerprint.slots import JSON
from detente.fingerprint.variants import VariantDictionary, default_dictionary

ATTACKS = ("interleave", "majority", "minority", "random")
T = TypeVar("T")

_SENTENCES = (
    "The organisation has been observed using spear phishing e-mails in order to deliver "
    "malicious software to targets in {place}.",
    "Furthermore, the group is believed to have carried out a number of cyber attacks against "
    "{sector} organisations since early {year}.",
    "Approximately {n} percent of the analysed samples were customised web sites hosting a "
    "back door.",
    "The actor attempted to harvest user names and host names, and utilised a key logger plug-in.",
    "In September {year}, {n} web pages were observed serving a multi-stage anti-virus evasion.",
    "Moreover, the operators are thought to have prioritised {sector} centres in {place}.",
    "The implant is used to exfiltrate file names and e-mail archives towards a sub-domain.",
    "Analysts recognised the behaviour of the dropper, which tries to disable defence tools.",
    "The campaign was seen targeting co-operation networks in {place} in mid-{year}.",
    "Its infrastructure makes use of preinstalled plugins and standardised back doors.",
    "Several unauthorised log-ins were labelled as reconnaissance by the {sector} centre.",
    "The travelled couriers carried artefacts on-line, for example zero day exploits.",
    "This modelled behaviour is characterised by on-line recruitment amongst {sector} users.",
    "The organisation realised that signalling servers were catalogued by the defence team.",
    "Approximately {n} hosts were weaponised in late {year}, as the U.S. team reported.",
)
_PLACES = ("Raqqa", "Deir ez-Zor", "Mosul", "Aleppo", "Idlib", "Homs", "Palmyra", "Manbij")
_SECTORS = ("government", "energy", "telecommunications", "media", "finance", "transport")
_VOCAB = {
    "indicator_types": ["malicious-activity", "attribution", "compromised", "anomalous-activity"],
    "labels": ["isis", "syria", "propaganda", "recruitment", "finance", "c2", "phishing"],
    "roles": ["agent", "director", "malware-author", "infrastructure-operator", "sponsor"],
    "threat_actor_types": ["terrorist", "crime-syndicate", "hacker", "activist"],
    "goals": ["recruit fighters", "raise funds", "spread propaganda", "disrupt services"],
    "capabilities": ["exfiltrates-data", "captures-keystrokes", "evades-av", "persists-after"],
    "malware_types": ["backdoor", "keylogger", "dropper", "remote-access-trojan"],
}


def _pick(rng: random.Random, vocab: str, low: int, high: int) -> list[str]:
    return rng.sample(_VOCAB[vocab], rng.randint(low, min(high, len(_VOCAB[vocab]))))


def _time(rng: random.Random, year: int) -> str:
    return (
        f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
        f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.000Z"
    )


def _prose(rng: random.Random, sentences: int) -> str:
    chosen = rng.sample(_SENTENCES, sentences)
    return " ".join(
        s.format(
            place=rng.choice(_PLACES),
            sector=rng.choice(_SECTORS),
            year=rng.randint(2013, 2017),
            n=rng.randint(2, 95),
        )
        for s in chosen
    )


def _base(rng: random.Random, kind: str, stamp: str) -> JSON:
    ident = uuid.UUID(int=rng.getrandbits(128), version=4)
    return {
        "type": kind,
        "spec_version": "2.1",
        "id": f"{kind}--{ident}",
        "created": stamp,
        "modified": stamp,
    }


def synthetic_object(rng: random.Random, kind: str, stamp: str) -> JSON:
    """One synthetic SDO of ``kind`` (indicator, threat-actor, malware, location)."""
    obj = _base(rng, kind, stamp)
    year = rng.randint(2013, 2017)
    if kind == "indicator":
        host = f"{rng.getrandbits(32):08x}.example"
        obj.update(
            name=f"Domain {host}",
            description=_prose(rng, rng.randint(2, 3)),
            pattern=f"[domain-name:value = '{host}']",
            pattern_type="stix",
            indicator_types=_pick(rng, "indicator_types", 2, 3),
            labels=_pick(rng, "labels", 2, 4),
            valid_from=_time(rng, year),
            valid_until=_time(rng, year + 2),
        )
    elif kind == "threat-actor":
        obj.update(
            name=f"Cell {rng.getrandbits(16):04x}",
            description=_prose(rng, 3),
            aliases=[f"Alias {rng.getrandbits(20):05x}" for _ in range(rng.randint(3, 5))],
            roles=_pick(rng, "roles", 2, 4),
            goals=_pick(rng, "goals", 2, 3),
            threat_actor_types=_pick(rng, "threat_actor_types", 2, 3),
            first_seen=_time(rng, year),
            last_seen=_time(rng, year + 1),
        )
    elif kind == "malware":
        obj.update(
            name=f"Tool {rng.getrandbits(16):04x}",
            description=_prose(rng, 2),
            is_family=True,
            malware_types=_pick(rng, "malware_types", 2, 3),
            capabilities=_pick(rng, "capabilities", 2, 4),
            first_seen=_time(rng, year),
        )
    else:
        obj.update(
            name=rng.choice(_PLACES),
            region="western-asia",
            country="SY",
            latitude=round(rng.uniform(33.0, 37.0), 4),
            longitude=round(rng.uniform(36.0, 41.0), 4),
        )
    return obj


def synthetic_report(rng: random.Random, size: int) -> list[JSON]:
    """A report and the ``size`` objects it refers to (report last)."""
    stamp = _time(rng, 2017)
    kinds = ["indicator"] * 5 + ["threat-actor"] * 2 + ["malware", "location"]
    objects = [synthetic_object(rng, rng.choice(kinds), stamp) for _ in range(size)]
    report = _base(rng, "report", stamp)
    report.update(
        name="ISIS activity in Syria",
        description=_prose(rng, 3),
        published=stamp,
        report_types=["threat-actor", "indicator"],
        labels=_pick(rng, "labels", 2, 3),
        object_refs=[o["id"] for o in objects],
    )
    return [*objects, report]


def release_all(
    fp: Fingerprinter, objects: Sequence[JSON], partners: Sequence[str]
) -> tuple[list[Release], dict[str, list[JSON]]]:
    """Release every object to every partner; returns the records and each partner's views."""
    releases: list[Release] = []
    views: dict[str, list[JSON]] = {p: [] for p in partners}
    for obj in objects:
        key = f"{obj['id']}|{obj.get('modified', '')}"
        for partner in partners:
            result = fp.embed(obj, partner, object_key=key)
            releases.append(Release(partner, key, result.record.to_json(), result.view))
            views[partner].append(result.view)
    return releases, views


# -- the adversary ----------------------------------------------------------------------
def choose(values: Sequence[T], attack: str, rng: random.Random) -> T:
    """Pick one colluder's value at a position where copies may differ."""
    if attack == "random":
        return rng.choice(list(values))
    counts = Counter(_freeze(v) for v in values)
    target = max(counts.values()) if attack == "majority" else min(counts.values())
    tied = [v for v in values if counts[_freeze(v)] == target]
    return rng.choice(tied)


def _freeze(value: Any) -> str:
    return repr(value)


def merge(
    copies: Sequence[Sequence[JSON]],
    attack: str,
    rng: random.Random,
    chunk: int = 4,
    dictionary: VariantDictionary | None = None,
) -> list[JSON]:
    """Merge colluders' copies (aligned object lists) with one of :data:`ATTACKS`."""
    words = dictionary or default_dictionary()
    out: list[JSON] = []
    for k, versions in enumerate(zip(*copies, strict=True)):
        if attack == "interleave":
            out.append(copy.deepcopy(versions[k % len(versions)]))
        else:
            out.append(_merge_object(list(versions), attack, rng, chunk, words))
    return out


def _merge_object(
    versions: list[JSON], attack: str, rng: random.Random, chunk: int, words: VariantDictionary
) -> JSON:
    merged = copy.deepcopy(versions[0])
    for name in merged:
        values = [v.get(name) for v in versions]
        if all(_freeze(v) == _freeze(values[0]) for v in values):
            continue
        if name in UNORDERED_LISTS and all(isinstance(v, list) for v in values):
            merged[name] = _merge_list(values, attack, rng, chunk, name)
        elif all(isinstance(v, str) for v in values) and name not in (
            "first_seen",
            "last_seen",
            "valid_from",
            "valid_until",
        ):
            merged[name] = _merge_text([str(v) for v in values], attack, rng, words)
        else:
            merged[name] = choose(values, attack, rng)
    return merged


def _merge_list(
    values: list[Any], attack: str, rng: random.Random, chunk: int, name: str
) -> list[Any]:
    head = 1 if name == "external_references" else 0
    out = list(values[0][:head])
    length = len(values[0])
    start = head
    while start < length:
        width = chunk if length - start != chunk + 1 else chunk - 1
        out.extend(choose([v[start : start + width] for v in values], attack, rng))
        start += width
    return out


def _merge_text(
    values: list[str], attack: str, rng: random.Random, words: VariantDictionary
) -> str:
    scans = [keyed_occurrences(v, words, 2) for v in values]
    if len({len(s) for s in scans}) != 1:
        return choose(values, attack, rng)
    text = values[0]
    for index in range(len(scans[0]) - 1, -1, -1):
        picks = [
            (s[index].occ.symbol, values[j][s[index].occ.start : s[index].end])
            for j, s in enumerate(scans)
        ]
        _, surface = choose(picks, attack, rng)
        occ = scans[0][index]
        text = text[: occ.occ.start] + surface + text[occ.end :]
    return text
