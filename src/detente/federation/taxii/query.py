"""TAXII 2.1 URL parameters → a store :class:`Query`.

``match[id]``, ``match[type]``, ``match[version]`` (``last``, ``first``, ``all`` or STIX
timestamps, any precision), ``match[spec_version]``, ``added_after`` (a STIX timestamp of
any precision; compared at the microsecond), ``limit`` (1 … ``page_limit``; larger values
are clamped) and ``next``.  Each ``match`` accepts comma-separated values.  Anything
malformed is a 400 naming the parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from detente.errors import ValidationError
from detente.stix.timestamps import micros_from_stix, normalise
from detente.store.base import Query

__all__ = ["TaxiiQuery", "parse_query"]

_TYPE = re.compile(r"^[a-z0-9][a-z0-9-]{0,249}$")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,249}--[0-9a-fA-F-]{36}$")
_SPEC = re.compile(r"^\d\.\d$")
_FILTERS = {"match[id]", "match[type]", "match[version]", "match[spec_version]"}


@dataclass(frozen=True, slots=True)
class TaxiiQuery:
    query: Query
    #: the filters as given, for binding ``next`` tokens to the query
    filters: dict[str, list[str]]
    next: str | None


def _values(params: Mapping[str, Sequence[str]], name: str) -> tuple[str, ...]:
    out: list[str] = []
    for raw in params.get(name, ()):
        out.extend(v.strip() for v in raw.split(",") if v.strip())
    return tuple(dict.fromkeys(out))


def _check_each(values: tuple[str, ...], pattern: re.Pattern[str], name: str) -> tuple[str, ...]:
    for v in values:
        if not pattern.match(v):
            raise ValidationError(f"{name} value {v!r} is not valid")
    return values


def _versions(values: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for v in values:
        out.append(v if v in {"last", "first", "all"} else normalise(v, field="match[version]"))
    return tuple(out)


def _limit(params: Mapping[str, Sequence[str]], page_limit: int) -> int:
    raw = params.get("limit", ())
    if not raw:
        return page_limit
    value = raw[-1].strip()
    if not value.isdigit() or int(value) < 1:
        raise ValidationError(f"limit {value!r} is not a positive integer")
    return min(int(value), page_limit)


def _added_after(params: Mapping[str, Sequence[str]]) -> int | None:
    raw = params.get("added_after", ())
    if not raw:
        return None
    return micros_from_stix(raw[-1].strip(), field="added_after")


def parse_query(params: Mapping[str, Sequence[str]], *, page_limit: int,
                default_versions: tuple[str, ...] = ("last",),
                object_id: str | None = None) -> TaxiiQuery:
    """Parse the filters of one TAXII request (``object_id`` from the URL, if any)."""
    ids = _check_each(_values(params, "match[id]"), _ID, "match[id]")
    if object_id is not None:
        _check_each((object_id,), _ID, "object id")
        ids = (object_id,)
    query = Query(
        types=_check_each(_values(params, "match[type]"), _TYPE, "match[type]"),
        ids=ids,
        versions=_versions(_values(params, "match[version]")) or default_versions,
        spec_versions=_check_each(_values(params, "match[spec_version]"), _SPEC,
                                  "match[spec_version]"),
        added_after=_added_after(params),
        limit=_limit(params, page_limit),
    )
    filters = {k: list(v) for k, v in params.items() if k in _FILTERS or k == "added_after"}
    if object_id is not None:
        filters["object"] = [object_id]
    tokens = params.get("next", ())
    return TaxiiQuery(query, filters, tokens[-1] if tokens else None)


def resume(query: Query, cursor: int) -> Query:
    """The query continued after ``cursor`` (the later of it and ``added_after``)."""
    after = cursor if query.added_after is None else max(cursor, query.added_after)
    return replace(query, added_after=after)
