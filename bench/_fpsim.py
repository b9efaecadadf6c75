"""A seeded world (synthetic reports and real content) and the collusion attacks, shared by
the fingerprint tests and ``bench/trace.py``.  Test and benchmark support: not shipped in
the package.  The synthetic reports look like ISIS-in-Syria intelligence:
indicators with prose descriptions, threat actors with aliases and roles, malware, locations
and a report whose ``object_refs`` list them.  ``random.Random`` is fine here: nothing
secret is drawn from it (the node secret is a parameter).

The adversary knows the scheme and the public variant dictionary but not the secret.  It
compares its copies: wherever they differ (a word, a list, a number) it can do what it
likes there, and only there.  :data:`ATTACKS`:

* ``interleave`` — each object taken whole from one colluder in turn;
* ``majority`` / ``minority`` / ``random`` — per differing word, list or value, the value
  most / least of them hold, or a random one of theirs;
* ``scrub`` — diff-and-scrub: every differing place replaced by a neutral, canonical value
  (differing lists sorted, differing words normalised to one spelling, differing numbers
  rounded);
* ``erasure`` — every differing place removed (word dropped, list or value deleted);
* ``foreign`` — every differing place replaced by a value none of them holds (lists
  shuffled, words replaced by a form outside the variant pair, numbers moved).
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from detente.fingerprint import Fingerprinter, Release
from detente.fingerprint.channels.slots import JSON, canonical_json, markable
from detente.fingerprint.channels.text import keyed_occurrences
from detente.fingerprint.channels.variants import VariantDictionary, default_dictionary
from detente.stix.vocab import TLP_2_0_IDS

NARROW = ("interleave", "majority", "minority", "random")
BROAD = ("scrub", "erasure", "foreign")
ATTACKS = NARROW + BROAD
ROOT = Path(__file__).resolve().parent.parent
ATTACK_SLICE = ROOT / "tests" / "data" / "attack-ics-slice.json"
STIX_REAL = ROOT / "tests" / "data" / "stix-real"
ATTACK_FULL = ROOT.parent / "shared" / "data" / "attack-ics-17.1.json"
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
            precision=30.0,
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


# -- real content -------------------------------------------------------------------------
def _objects_of(doc: Any) -> list[JSON]:
    if isinstance(doc, dict) and isinstance(doc.get("objects"), list):
        return [o for o in doc["objects"] if isinstance(o, dict)]
    if isinstance(doc, list):
        return [o for o in doc if isinstance(o, dict)]
    return [doc] if isinstance(doc, dict) and "type" in doc else []


def real_objects(*, full_attack: bool = False) -> list[JSON]:
    """Real published content that would be fingerprinted: ATT&CK ICS (the vendored slice,
    or the whole 17.1 bundle when ``full_attack`` and it is present) and the OASIS corpus;
    SDOs and SROs only, one version each, marked TLP:GREEN (what the node would share)."""
    docs: list[Any] = []
    source = ATTACK_FULL if full_attack and ATTACK_FULL.is_file() else ATTACK_SLICE
    docs.append(json.loads(source.read_text("utf-8")))
    for path in sorted(STIX_REAL.glob("*.json")):
        try:
            docs.append(json.loads(path.read_text("utf-8")))
        except json.JSONDecodeError:
            continue
    seen: set[str] = set()
    out: list[JSON] = []
    for doc in docs:
        for obj in _objects_of(doc):
            key = f"{obj.get('id')}|{obj.get('modified', '')}"
            if not markable(obj) or key in seen or obj.get("revoked") or obj.get(
                "x_mitre_deprecated"
            ):
                continue
            seen.add(key)
            out.append({**obj, "object_marking_refs": [TLP_2_0_IDS["green"]]})
    return out


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
    """Pick one colluder's value at a place where copies differ (narrow attacks)."""
    if attack in ("random", "interleave"):
        return rng.choice(list(values))
    counts = Counter(_freeze(v) for v in values)
    target = max(counts.values()) if attack == "majority" else min(counts.values())
    tied = [v for v in values if counts[_freeze(v)] == target]
    return rng.choice(tied)


def _freeze(value: Any) -> str:
    return canonical_json(value)


_DROP = object()


def merge(
    copies: Sequence[Sequence[JSON]],
    attack: str,
    rng: random.Random,
    dictionary: VariantDictionary | None = None,
) -> list[JSON]:
    """Merge colluders' copies (aligned object lists) with one of :data:`ATTACKS`."""
    if attack not in ATTACKS:
        raise ValueError(f"unknown attack {attack!r}")
    words = dictionary or default_dictionary()
    out: list[JSON] = []
    for k, versions in enumerate(zip(*copies, strict=True)):
        if attack == "interleave":
            out.append(copy.deepcopy(versions[k % len(versions)]))
        else:
            out.append(_merge_object(list(versions), attack, rng, words))
    return out


def _merge_object(
    versions: list[JSON], attack: str, rng: random.Random, words: VariantDictionary
) -> JSON:
    merged = copy.deepcopy(versions[0])
    for name in list(merged):
        values = [v.get(name) for v in versions]
        if all(_freeze(v) == _freeze(values[0]) for v in values):
            continue
        if all(isinstance(v, str) for v in values):
            value: Any = _merge_text([str(v) for v in values], attack, rng, words)
        elif all(isinstance(v, list) for v in values):
            value = _merge_list(values, attack, rng)
        else:
            value = _merge_value(values, attack, rng)
        if value is _DROP:
            del merged[name]
        else:
            merged[name] = value
    return merged


def _merge_list(values: list[Any], attack: str, rng: random.Random) -> Any:
    if attack in NARROW:
        return copy.deepcopy(choose(values, attack, rng))
    if attack == "erasure":
        return _DROP
    items = list(values[0])
    if attack == "scrub":
        return sorted(items, key=_freeze)
    held = {tuple(_freeze(e) for e in v) for v in values}
    for _ in range(20):  # foreign: an order none of them holds
        rng.shuffle(items)
        if tuple(_freeze(e) for e in items) not in held:
            break
    return items


def _merge_value(values: list[Any], attack: str, rng: random.Random) -> Any:
    if attack in NARROW:
        return choose(values, attack, rng)
    if attack == "erasure":
        return _DROP
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) != len(values):
        return choose(values, "random", rng) if attack == "foreign" else values[0]
    if attack == "scrub":
        return round(float(numbers[0]), 4)
    return float(numbers[0]) + rng.choice((-1, 1)) * rng.uniform(5e-6, 5e-5)


def _merge_text(
    values: list[str], attack: str, rng: random.Random, words: VariantDictionary
) -> str:
    """Word-level: only the variant occurrences where copies differ are touched."""
    scans = [keyed_occurrences(v, words, 2) for v in values]
    if len({len(s) for s in scans}) != 1:
        return choose(values, "random" if attack in BROAD else attack, rng)
    text = values[0]
    for index in range(len(scans[0]) - 1, -1, -1):
        occs = [s[index] for s in scans]
        surfaces = [values[j][o.occ.start : o.end] for j, o in enumerate(occs)]
        if len({o.occ.symbol for o in occs}) == 1:
            continue
        first = occs[0]
        group = words.groups[first.occ.group]
        if attack in NARROW:
            surface = choose(surfaces, attack, rng)
        elif attack == "scrub":  # one canonical spelling, whoever held what
            surface = words.render(first.occ.group, len(group) - 1, first.occ.number)
        elif attack == "erasure":
            surface = ""
        else:  # foreign: a form outside the pair they hold, or a rewording
            held = {o.occ.symbol for o in occs}
            others = [k for k in range(len(group)) if k not in held]
            surface = (
                words.render(first.occ.group, others[0], first.occ.number)
                if others
                else surfaces[0][:3] + "."
            )
        text = text[: first.occ.start] + surface + text[first.end :]
    return text
