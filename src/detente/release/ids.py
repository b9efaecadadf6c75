"""A class view's object id at rest: kept as the id's UUID beside the object's type
(``release_views.uuid``, ``docs/release.md`` "At rest"), given back and looked up whole."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from detente.errors import StoreError

__all__ = ["UUID_PATTERN", "object_id_of", "object_in", "object_uuid"]

#: the canonical form of a UUID as the validator admits it in an identifier (a regular
#: expression in both Python's and PostgreSQL's syntax)
UUID_PATTERN = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_UUID_RE = re.compile(UUID_PATTERN)


def object_uuid(object_id: str, type_: str) -> str:
    """The UUID a class view of ``object_id`` keeps (the id less its ``type_--``); a
    StoreError if the id is not ``type_--`` and a canonical UUID — which the validator
    never admits, so it is refused rather than kept in a form it would not come back in."""
    uuid = object_id[len(type_) + 2:]
    if object_id[:len(type_) + 2] != f"{type_}--" or not _UUID_RE.fullmatch(uuid):
        raise StoreError(f"cannot keep a release view of {object_id!r} (type {type_!r}): "
                         "its id is not '<type>--<lower-case UUID>'")
    return uuid


def object_id_of(v: Any) -> sa.ColumnElement[str]:
    """The object id of the class views ``v`` (``views.c`` or an alias's ``.c``), in SQL:
    ``type || '--' || uuid``, labelled ``object_id``."""
    return _whole(v).label("object_id")


def _whole(v: Any) -> sa.ColumnElement[str]:
    whole: sa.ColumnElement[str] = v.type + "--" + sa.cast(v.uuid, sa.Text)
    return whole


def object_in(v: Any, ids: Iterable[str]) -> sa.ColumnElement[bool]:
    """The class views ``v`` of objects ``ids``: by UUID (the uuid index), then the whole
    id compared (two types may share a UUID).  An id that is no ``<type>--<UUID>`` has no
    class view: it matches nothing."""
    wanted = sorted(set(ids))
    uuids = sorted({i.rpartition("--")[2] for i in wanted if "--" in i})
    uuids = [u for u in uuids if _UUID_RE.fullmatch(u)]
    if not uuids:
        return sa.false()
    return sa.and_(v.uuid.in_(uuids), _whole(v).in_(wanted))
