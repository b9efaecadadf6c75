"""``validate``: the one way a STIX object enters a node.

Hand-written because it sits on the ingest hot path: the ingest target is 25,000 objects/s
on one core including the database insert, which leaves validation a few microseconds,
while ``stix2.parse`` costs ~660 µs and ``stix2-validator`` ~4.3 ms per object.  So this
module checks what matters for a node that stores and re-shares partners' objects, in one
pass over the top-level properties, from the tables in :mod:`detente.stix.rules`:

(1) a JSON object with a well-formed ``type`` and an ``id`` of that type with an RFC 4122 UUID;
(2) ``spec_version`` "2.1" (required except on SCOs, where it is optional);
(3) the required properties of the type, and the "one of" rules of a few types;
(4) every timestamp property well formed, and the order constraints (created <= modified ...);
(5) property names well formed; cheap property types (strings, lists of strings, booleans,
    confidence 0-100, ...); every ``*_ref``/``*_refs`` an identifier; markings well formed;
    ``extensions`` keys and values;
(6) type-specific rules: the indicator pattern (:mod:`detente.stix.patterns`), the two
    marking-definition forms, location, malware, observed-data, sighting, artifact, file...

Custom properties and objects that are well formed are kept as they are.  Every refusal is
a :class:`~detente.stix.errors.StixValidationError` naming the object and property path.

Identifiers with upper-case hex in their UUID (``relationship--…-E9034ac98aba`` in the OASIS
examples) are accepted and folded to lower case, in the id and in every reference
(:func:`fold_id_case`): RFC 4122 reads hex case-insensitively on input and writes it lower
case.  Folding, rather than storing the id as given, keeps one object one store key: a
partner re-casing an id cannot turn our object into a second one or hide an echo, and a
reference written in either case finds its object.  The fold is a slow path taken only
after the fast checks refused the object, so lower-case input costs nothing more.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

import orjson

from detente.errors import ValidationError
from detente.stix import rules
from detente.stix.errors import StixValidationError
from detente.stix.model import UNVERSIONED, StixObject
from detente.stix.patterns import check_pattern
from detente.stix.timestamps import normalise, parse_timestamp

__all__ = ["fold_id_case", "validate", "validate_bytes"]

#: (datetime to the microsecond, nine-digit fraction, the timestamp as received)
_Stamp = tuple[datetime, str, str]
_Check = Callable[[str, str, Any], None]

_SDO: Final = 1
_META: Final = 2
_SCO: Final = 3


def _fail(where: str, path: str, reason: str) -> StixValidationError:
    return StixValidationError(where, path, reason)


def validate_bytes(data: bytes) -> StixObject:
    """Decode one JSON document (orjson) and :func:`validate` it."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _fail("input", "", f"not valid JSON: {exc}") from None
    return validate(obj)


def validate(obj: object) -> StixObject:
    """Check one STIX 2.1 object and return it as a :class:`StixObject`.

    Identifiers with upper-case hex are folded to lower case (the returned ``body`` and
    ``raw`` hold the folded form; the caller's dict is not changed).  A
    :class:`StixObject` is returned as it is: it exists only after validation (an ingest
    worker process validated it ahead, :mod:`detente.federation.exchange.pipe`)."""
    if type(obj) is StixObject:
        return obj
    try:
        return _validate(obj)
    except StixValidationError:
        folded = fold_id_case(obj)
        if folded is None:
            raise
    return _validate(folded)


def fold_id_case(obj: object) -> dict[str, Any] | None:
    """A copy of ``obj`` with every identifier (``id``, ``*_ref``, ``*_refs``, extension
    keys) that has upper-case hex folded to lower case; None if there is none."""
    if not isinstance(obj, dict):
        return None
    changed = [False]
    folded = _fold(obj, changed)
    return folded if changed[0] else None


def _fold_id(value: Any, changed: list[bool]) -> Any:
    if isinstance(value, str) and rules.ANY_CASE_ID_RE.fullmatch(value):
        lower = value.lower()
        if lower != value:
            changed[0] = True
            return lower
    return value


def _fold(value: Any, changed: list[bool]) -> Any:
    if isinstance(value, list):
        return [_fold(item, changed) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[Any, Any] = {}
    for given, item in value.items():
        key = _fold_id(given, changed)  # extension-definition ids used as keys
        if key == "id" or (isinstance(key, str) and key.endswith("_ref")):
            out[key] = _fold_id(item, changed)
        elif isinstance(key, str) and key.endswith("_refs") and isinstance(item, list):
            out[key] = [_fold_id(ref, changed) for ref in item]
        else:
            out[key] = _fold(item, changed)
    return out


def _validate(obj: object) -> StixObject:
    if not isinstance(obj, dict):
        raise _fail("input", "", f"not a JSON object (got {_json_type(obj)})")
    type_, where = _check_type_and_id(obj)
    kind = _kind(obj, type_, where)
    _check_spec_version(obj, kind, where)
    _check_required(obj, type_, kind, where)
    stamps = _check_properties(obj, where)
    _check_order(stamps, where)
    special = _SPECIAL.get(type_)
    if special is not None:
        special(where, type_, obj)
    return _build(obj, type_, kind, stamps, where)


# -- (1) type and id -------------------------------------------------------------------------


def _check_type_and_id(obj: dict[str, Any]) -> tuple[str, str]:
    type_ = obj.get("type")
    if not isinstance(type_, str):
        raise _fail("object", "type", "missing" if type_ is None else "not a string")
    if type_ not in _ACCEPTED_TYPES:
        if not (rules.TYPE_RE.fullmatch(type_) and len(type_) <= 250):
            raise _fail("object", "type", f"{type_!r} is not a STIX type name (a-z, 0-9, '-')")
        _accept(_ACCEPTED_TYPES, type_)
    if type_ == "bundle":
        raise _fail(type_, "type", "a bundle is an envelope, not an object: read it as input")
    id_ = obj.get("id")
    if not isinstance(id_, str):
        raise _fail(type_, "id", "missing" if id_ is None else "not a string")
    if not id_.startswith(type_ + "--"):
        raise _fail(type_, "id", f"{id_!r} does not start with the object's type {type_!r}")
    if not rules.ID_RE.fullmatch(id_):
        raise _fail(type_, "id", f"{id_!r} is not <type>--<RFC 4122 UUID>")
    return type_, id_


def _kind(obj: dict[str, Any], type_: str, where: str) -> int:
    if type_ in rules.SDO_REQUIRED:
        return _SDO
    if type_ in rules.SCO_REQUIRED:
        return _SCO
    if type_ in rules.META_REQUIRED:
        return _META
    new_kind = _extension_defined_kind(obj)
    if new_kind is not None:
        return _SCO if new_kind == "new-sco" else _SDO
    if type_.startswith("x-"):
        return _SDO if "created" in obj or "modified" in obj else _SCO
    raise _fail(
        where, "type",
        f"{type_!r} is not a STIX 2.1 type (custom types start with 'x-' or are defined by a "
        "new-sdo/new-sro/new-sco extension)",
    )  # fmt: skip


def _extension_defined_kind(obj: dict[str, Any]) -> str | None:
    """``new-sdo``/``new-sro``/``new-sco`` when an extension-definition defines this type."""
    extensions = obj.get("extensions")
    if not isinstance(extensions, dict):
        return None
    for key, value in extensions.items():
        if key.startswith("extension-definition--") and isinstance(value, dict):
            ext_type = value.get("extension_type")
            if ext_type in ("new-sdo", "new-sro", "new-sco"):
                return str(ext_type)
    return None


# -- (2) spec_version, (3) required properties ----------------------------------------------


def _check_spec_version(obj: dict[str, Any], kind: int, where: str) -> None:
    spec = obj.get("spec_version")
    if spec == "2.1":
        return
    if spec is None:
        if kind == _SCO:
            return
        raise _fail(where, "spec_version", "missing (required for this type; a STIX 2.0 object?)")
    raise _fail(where, "spec_version", f"{spec!r} is not '2.1'")


def _check_required(obj: dict[str, Any], type_: str, kind: int, where: str) -> None:
    if kind == _SDO:
        required = rules.SDO_REQUIRED.get(type_, ())
        _need(obj, where, ("created", "modified"))
    elif kind == _META:
        required = rules.META_REQUIRED[type_]
    else:
        required = rules.SCO_REQUIRED.get(type_, ())
    _need(obj, where, required)


def _need(obj: dict[str, Any], where: str, names: tuple[str, ...]) -> None:
    for name in names:
        if name not in obj:
            raise _fail(where, name, "missing (required)")


# -- (4) timestamps, (5) property names and types -------------------------------------------


def _check_properties(obj: dict[str, Any], where: str) -> dict[str, _Stamp]:
    stamps: dict[str, _Stamp] = {}
    checks = _PROPERTY_CHECKS
    for name, value in obj.items():
        check = checks.get(name)
        if check is _check_string:  # the commonest check, inline
            if not isinstance(value, str):
                _check_string(where, name, value)
        elif check is _timestamp:
            stamps[name] = _stamp(value, where, name)
        elif check is _skip:
            continue
        elif check is not None:
            check(where, name, value)
        elif name.endswith("_ref"):
            _check_ref(where, name, value)
        elif name.endswith("_refs"):
            _check_refs(where, name, value)
        elif not rules.PROPERTY_NAME_RE.fullmatch(name):
            raise _fail(where, name, "not a valid property name (a-z, 0-9, '_'; 3-250 long)")
    return stamps


def _timestamp(where: str, path: str, value: object) -> None:
    """Marks timestamp properties in _PROPERTY_CHECKS; _check_properties parses them."""


def _skip(where: str, path: str, value: object) -> None:
    """Properties checked before the property pass (type, id, spec_version)."""


def _stamp(value: object, where: str, path: str) -> _Stamp:
    """Parse one timestamp, through a small cache: objects of one feed share timestamps."""
    cached = _STAMP_CACHE.get(value) if isinstance(value, str) else None
    if cached is not None:
        return cached
    try:
        dt, frac9 = parse_timestamp(value, field=path)
    except ValidationError as exc:  # re-raised with the object named
        raise _fail(where, path, exc.message.removeprefix(f"{path} ")) from None
    stamp = (dt, frac9, str(value))
    if len(_STAMP_CACHE) >= _STAMP_CACHE_SIZE:
        _STAMP_CACHE.clear()
    _STAMP_CACHE[stamp[2]] = stamp
    return stamp


#: Parsed timestamps by text; emptied when full (cheaper than LRU bookkeeping).
_STAMP_CACHE: Final[dict[str, _Stamp]] = {}
_STAMP_CACHE_SIZE: Final = 4096


def _check_order(stamps: dict[str, _Stamp], where: str) -> None:
    for earlier, later, strict in rules.ORDERED_PAIRS:
        if later not in stamps or earlier not in stamps:
            continue
        a, b = stamps[earlier], stamps[later]
        if b[:2] < a[:2] or (strict and b[:2] == a[:2]):
            relation = "after" if strict else "at or after"
            raise _fail(where, later, f"must be {relation} {earlier}")


def _check_ref(where: str, path: str, value: object) -> None:
    if not (isinstance(value, str) and rules.ID_RE.fullmatch(value)):
        raise _fail(where, path, f"{value!r} is not a STIX identifier")


def _check_refs(where: str, path: str, value: object) -> None:
    if not isinstance(value, list):
        raise _fail(where, path, f"must be a list of identifiers, got {_json_type(value)}")
    match = rules.ID_RE.fullmatch
    for item in value:
        if not (isinstance(item, str) and match(item)):
            _check_ref(where, f"{path}[{value.index(item)}]", item)


def _check_string(where: str, path: str, value: object) -> None:
    if not isinstance(value, str):
        raise _fail(where, path, f"must be a string, got {_json_type(value)}")


def _check_string_list(where: str, path: str, value: object) -> None:
    if not isinstance(value, list):
        raise _fail(where, path, f"must be a list of strings, got {_json_type(value)}")
    for item in value:
        if not isinstance(item, str):
            _check_string(where, f"{path}[{value.index(item)}]", item)


def _check_bool(where: str, path: str, value: object) -> None:
    if not isinstance(value, bool):
        raise _fail(where, path, f"must be true or false, got {_json_type(value)}")


def _int_range(low: int, high: int) -> _Check:
    def check(where: str, path: str, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _fail(where, path, f"must be an integer from {low} to {high}, got {value!r}")

    return check


#: type names, creators and marking ids already accepted, each in its own set (a feed names
#: the same few in every object); a set is emptied when full
_ACCEPTED_TYPES: Final[set[str]] = set()
_ACCEPTED_CREATORS: Final[set[str]] = set()
_ACCEPTED_MARKINGS: Final[set[str]] = set()
_ACCEPTED_SIZE: Final = 1024


def _accept(seen: set[str], value: str) -> None:
    if len(seen) >= _ACCEPTED_SIZE:
        seen.clear()
    seen.add(value)


def _check_created_by(where: str, path: str, value: object) -> None:
    if isinstance(value, str) and value in _ACCEPTED_CREATORS:
        return
    if not (isinstance(value, str) and rules.IDENTITY_ID_RE.fullmatch(value)):
        _check_ref(where, path, value)
        raise _fail(where, path, f"{value!r} must refer to an identity")
    _accept(_ACCEPTED_CREATORS, value)


def _check_object_markings(where: str, path: str, value: object) -> None:
    if not isinstance(value, list):
        raise _fail(where, path, f"must be a list of identifiers, got {_json_type(value)}")
    match = rules.MARKING_ID_RE.fullmatch
    for item in value:
        if isinstance(item, str) and item in _ACCEPTED_MARKINGS:
            continue
        if isinstance(item, str) and match(item):
            _accept(_ACCEPTED_MARKINGS, item)
        else:
            at = f"{path}[{value.index(item)}]"
            _check_ref(where, at, item)
            raise _fail(where, at, f"{item!r} is not a marking-definition id")


def _check_granular(where: str, path: str, value: object) -> None:
    if not isinstance(value, list):
        raise _fail(where, path, f"must be a list, got {_json_type(value)}")
    for i, marking in enumerate(value):
        at = f"{path}[{i}]"
        if not isinstance(marking, dict):
            raise _fail(where, at, f"must be an object, got {_json_type(marking)}")
        selectors = marking.get("selectors")
        if not isinstance(selectors, list) or not selectors:
            raise _fail(where, f"{at}.selectors", "must be a non-empty list of strings")
        for j, selector in enumerate(selectors):
            if not isinstance(selector, str) or not selector:
                raise _fail(where, f"{at}.selectors[{j}]", "must be a non-empty string")
        if ("marking_ref" in marking) == ("lang" in marking):
            raise _fail(where, at, "must have exactly one of marking_ref and lang")
        if "marking_ref" in marking:
            _check_object_markings(where, f"{at}.marking_ref", [marking["marking_ref"]])


def _check_base64(where: str, path: str, value: object) -> None:
    if not (isinstance(value, str) and len(value) % 4 == 0 and rules.BASE64_RE.fullmatch(value)):
        shown = value[:40] + "..." if isinstance(value, str) and len(value) > 40 else value
        raise _fail(where, path, f"{shown!r} is not base64")


def _check_hashes(where: str, path: str, value: object) -> None:
    if not isinstance(value, dict) or not value:
        raise _fail(where, path, "must be a non-empty object of hash name to hash value")
    for name, digest in value.items():
        if not isinstance(digest, str) or not digest or len(name) > 250:
            raise _fail(where, f"{path}.{name}", "must be a non-empty string")


def _check_dict_list(*required: str) -> _Check:
    def check(where: str, path: str, value: object) -> None:
        if not isinstance(value, list):
            raise _fail(where, path, f"must be a list, got {_json_type(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise _fail(where, f"{path}[{i}]", f"must be an object, got {_json_type(item)}")
            for name in required:
                if not isinstance(item.get(name), str):
                    raise _fail(where, f"{path}[{i}].{name}", "missing or not a string")

    return check


def _check_extensions(where: str, path: str, value: object) -> None:
    if not isinstance(value, dict):
        raise _fail(where, path, f"must be an object, got {_json_type(value)}")
    for key, ext in value.items():
        at = f"{path}.{key}"
        if key.startswith("extension-definition--"):
            if not rules.ID_RE.fullmatch(key):
                raise _fail(where, at, "not a valid extension-definition id")
        elif not (rules.EXTENSION_NAME_RE.fullmatch(key) and len(key) <= 250):
            raise _fail(where, at, "not an extension-definition id or an extension name")
        if not isinstance(ext, dict):
            raise _fail(where, at, f"must be an object, got {_json_type(ext)}")
        for name, inner in ext.items():
            if name.endswith("_ref"):
                _check_ref(where, f"{at}.{name}", inner)
            elif name.endswith("_refs"):
                _check_refs(where, f"{at}.{name}", inner)


_PROPERTY_CHECKS: Final[dict[str, _Check]] = {
    **dict.fromkeys(rules.STRING_PROPS, _check_string),
    **dict.fromkeys(rules.STRING_LIST_PROPS, _check_string_list),
    **dict.fromkeys(rules.BOOL_PROPS, _check_bool),
    **dict.fromkeys(rules.TIMESTAMP_PROPS, _timestamp),
    **dict.fromkeys(("id", "type", "spec_version"), _skip),
    "confidence": _int_range(0, 100),
    "number_observed": _int_range(1, 999_999_999),
    "count": _int_range(0, 999_999_999),
    "created_by_ref": _check_created_by,
    "object_marking_refs": _check_object_markings,
    "granular_markings": _check_granular,
    "external_references": _check_dict_list("source_name"),
    "kill_chain_phases": _check_dict_list("kill_chain_name", "phase_name"),
    "extensions": _check_extensions,
    "hashes": _check_hashes,
    "payload_bin": _check_base64,
}


# -- (6) type-specific rules -----------------------------------------------------------------


def _indicator(where: str, type_: str, obj: dict[str, Any]) -> None:
    if obj["pattern_type"] == "stix":
        if "pattern_version" in obj and obj["pattern_version"] not in ("2.1", "2.0"):
            raise _fail(where, "pattern_version", f"{obj['pattern_version']!r} is not 2.1")
        check_pattern(obj["pattern"], where=where)


def _marking_definition(where: str, type_: str, obj: dict[str, Any]) -> None:
    if "definition_type" in obj or "definition" in obj:
        _need(obj, where, ("definition_type", "definition"))
        definition = obj["definition"]
        if not isinstance(definition, dict):
            raise _fail(where, "definition", f"must be an object, got {_json_type(definition)}")
        kind = obj["definition_type"]
        if kind == "tlp" and definition.get("tlp") not in ("white", "green", "amber", "red"):
            raise _fail(where, "definition.tlp", "must be white, green, amber or red")
        if kind == "statement" and not isinstance(definition.get("statement"), str):
            raise _fail(where, "definition.statement", "missing or not a string")
    elif not obj.get("extensions"):
        raise _fail(where, "", "needs definition_type and definition, or extensions")


def _location(where: str, type_: str, obj: dict[str, Any]) -> None:
    has_lat, has_long = "latitude" in obj, "longitude" in obj
    if has_lat != has_long:
        raise _fail(where, "latitude" if has_long else "longitude", "missing (comes in a pair)")
    for name, limit in (("latitude", 90), ("longitude", 180)):
        value = obj.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int | float) or abs(value) > limit:
            raise _fail(where, name, f"must be a number from -{limit} to {limit}")
    if not (has_lat or "region" in obj or "country" in obj):
        raise _fail(where, "", "needs at least one of region, country, latitude/longitude")


def _malware(where: str, type_: str, obj: dict[str, Any]) -> None:
    if obj.get("is_family") is True and "name" not in obj:
        raise _fail(where, "name", "missing (required when is_family is true)")


def _one_of(*names: str) -> Callable[[str, str, dict[str, Any]], None]:
    def check(where: str, type_: str, obj: dict[str, Any]) -> None:
        if not any(name in obj for name in names):
            raise _fail(where, "", f"needs at least one of {', '.join(names)}")

    return check


def _observed_data(where: str, type_: str, obj: dict[str, Any]) -> None:
    if ("object_refs" in obj) == ("objects" in obj):
        raise _fail(where, "object_refs", "exactly one of object_refs and objects is required")


def _network_traffic(where: str, type_: str, obj: dict[str, Any]) -> None:
    _one_of("src_ref", "dst_ref")(where, type_, obj)


def _artifact(where: str, type_: str, obj: dict[str, Any]) -> None:
    if ("payload_bin" in obj) == ("url" in obj):
        raise _fail(where, "", "exactly one of payload_bin and url is required")
    if "url" in obj and "hashes" not in obj:
        raise _fail(where, "hashes", "missing (required with url)")


_SPECIAL: Final[dict[str, Callable[[str, str, dict[str, Any]], None]]] = {
    "indicator": _indicator,
    "marking-definition": _marking_definition,
    "location": _location,
    "malware": _malware,
    "malware-analysis": _one_of("result", "analysis_sco_refs"),
    "observed-data": _observed_data,
    "network-traffic": _network_traffic,
    "artifact": _artifact,
    "file": _one_of("hashes", "name"),
}


# -- the StixObject --------------------------------------------------------------------------


def _build(
    obj: dict[str, Any], type_: str, kind: int, stamps: dict[str, _Stamp], where: str
) -> StixObject:
    if kind == _SCO and "created" not in stamps:
        version = UNVERSIONED
    elif type_ == "marking-definition" or "modified" not in stamps:
        version = _normalised(stamps["created"])  # marking-definitions are never versioned
    else:
        version = _normalised(stamps["modified"])
    try:
        # a copy of its exact size: orjson's result keeps the ~8 KB block it was written
        # into (tracemalloc: 8,154 bytes behind a 524-byte result, orjson 3.13), and a raw
        # lives as long as its object — a batch of 5,000, a strict ingest's every object
        raw = bytes(memoryview(orjson.dumps(obj)))
        digest = hashlib.sha256(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)).digest()
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise _fail(where, "", f"cannot be serialised as JSON: {exc}") from None
    # positional (id, type, version, spec_version, created_by_ref, revoked, body, raw,
    # digest): the hot path's construction
    return StixObject(obj["id"], type_, version, obj.get("spec_version", "2.1"),
                      obj.get("created_by_ref"), obj.get("revoked", False), obj, raw, digest)


def _normalised(stamp: _Stamp) -> str:
    """``timestamps.normalise`` of an already parsed timestamp, without parsing it again.

    The received text was matched by timestamps' pattern, so its first 19 characters are
    ``YYYY-MM-DDTHH:MM:SS``, which is what normalise's strftime prints for years >= 1000
    (tests/stix/test_validate.py pins the equality); earlier years go through normalise.
    """
    _, frac9, text = stamp
    if text[0] == "0":
        return normalise(text)
    return text[:19] + "." + frac9 + "Z"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
