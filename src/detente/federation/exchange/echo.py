"""Echo detection: a "new" report from a partner that is really something we released to it.

An incoming object from partner P is an **echo** when, before it arrived:

  (1) we released the same (id, version) to any partner — our own view comes back, from P
      or around a circle (us → fr → ru → us); or
  (2) we released to P the same content under another id — P re-issued it as its own: an
      indicator with the
      same canonical pattern (the set of ``=`` comparisons of
      :func:`detente.stix.patterns.simple_comparisons`, else the whitespace-normalised
      pattern), or a named object of the same type and case/punctuation-folded name.

Content keys are taken from both the class view P received and the stored original: the
fingerprint P's copy carries never touches a type, a pattern or a name (it reorders
unordered lists and rewords prose), so P's own view has the class view's keys — and the
index is built without deriving P's views again (a third of the cost at 10,000 views).
A later version of the *same* id is an update by its creator, never an echo.  Echoes of
kind (1) are not stored again (we hold the original; local material is never
overwritten) — a marking or extension definition coming back this way is support
material, counted as a duplicate, not an echo; echoes of kind (2) are stored with
``Provenance.flags = {"echo": true, "echo_of": <our object id>}`` so that they never
count as P's contribution or as corroboration.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from detente.errors import DetenteError
from detente.release import iter_release_records, released_versions
from detente.stix.patterns import simple_comparisons
from detente.stix.timestamps import normalise
from detente.store.base import LOCAL, Query, Store

__all__ = ["SUPPORT_TYPES", "Echo", "EchoIndex", "content_keys"]

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_SPACE = re.compile(r"\s+")
#: named types whose name is not the content (identities, markings, places)
_NOT_BY_NAME = frozenset({"identity", "marking-definition", "extension-definition",
                          "location", "language-content"})
_CHUNK = 500
#: support material: coming back by id it is a duplicate, not an echo
SUPPORT_TYPES = frozenset({"marking-definition", "extension-definition"})


def _ours_released(store: Store, ids: set[str]) -> set[tuple[str, str]]:
    """The (id, version) released to any partner of those of ``ids`` that are *our own*
    material.  A third party's object we relayed that comes back by another route is not
    circular reporting of ours: the store counts it a duplicate by another route."""
    released = released_versions(store.engine, ids)
    local = store.held({oid for oid, _ in released}, (LOCAL,)) if released else set()
    return {k for k in released if k[0] in local}


@dataclass(frozen=True, slots=True)
class Echo:
    """Why an incoming object is an echo: the object of ours it repeats, and how."""

    echo_of: str
    how: str  # "id" | "support" | "pattern" | "name"

    @property
    def by_id(self) -> bool:
        """Our own (id, version) back: not stored again."""
        return self.how in {"id", "support"}

    @property
    def flags(self) -> dict[str, Any]:
        return {"echo": True, "echo_of": self.echo_of, "echo_match": self.how}


def content_keys(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(kind, key) pairs identifying an object's content across ids."""
    type_ = body.get("type")
    if not isinstance(type_, str):
        return []
    keys: list[tuple[str, str]] = []
    pattern = body.get("pattern")
    if type_ == "indicator" and isinstance(pattern, str):
        simple = simple_comparisons(pattern)
        text = repr(sorted(simple)) if simple else _SPACE.sub(" ", pattern.strip())
        keys.append(("pattern", text))
    name = body.get("name")
    if type_ != "indicator" and type_ not in _NOT_BY_NAME and isinstance(name, str):
        folded = _NON_WORD.sub("", name.casefold())
        if folded:
            keys.append(("name", f"{type_}|{folded}"))
    return keys


class _Unset:
    """No version given: :meth:`EchoIndex.match` works it out."""


_UNSET = _Unset()


def _version_of(body: Mapping[str, Any]) -> str | None:
    value = body.get("modified") or body.get("created")
    if not isinstance(value, str):
        return None
    try:
        return normalise(value, field="modified")
    except DetenteError:  # hostile input: no version, so no exact-id echo
        return None


class EchoIndex:
    """What we released to one partner, indexed by content; exact (id, version) echoes
    are looked up per page, by id (:func:`detente.release.released_versions`): an object's
    version is worked out only when its id was released."""

    def __init__(self, partner: str,
                 ours_released: Callable[[set[str]], set[tuple[str, str]]] | None = None
                 ) -> None:
        self.partner = partner
        #: (id, version) released to this partner
        self.released: set[tuple[str, str]] = set()
        self.by_content: dict[tuple[str, str], str] = {}
        #: the (id, version) of those ids released to any partner as our own material
        self._ours = ours_released or (
            lambda ids: {k for k in self.released if k[0] in ids})

    @classmethod
    def build(cls, store: Store, partner: str) -> EchoIndex:
        """Index the content of what we released to ``partner``; exact echoes are looked
        up in the release records and the store, page by page."""
        index = cls(partner, lambda keys: _ours_released(store, keys))
        for record in iter_release_records(store.engine, partner=partner, derive=False):
            index.released.add((record.object_id, record.version))
            index._add_content(record.view, record.object_id)
        index._add_originals(store)
        return index

    def _add_content(self, body: Mapping[str, Any], object_id: str) -> None:
        for key in content_keys(body):
            self.by_content.setdefault(key, object_id)

    def _add_originals(self, store: Store) -> None:
        ids = sorted({oid for oid, _ in self.released})
        for start in range(0, len(ids), _CHUNK):
            query = Query(ids=tuple(ids[start:start + _CHUNK]), versions=("all",))
            for obj in store.iter_all(query):
                if (obj.id, obj.version) in self.released:
                    self._add_content(obj.body, obj.id)

    def __len__(self) -> int:
        return len(self.released)

    def _ours_released(self, bodies: list[Any],
                       local: Container[str] | None = None) -> set[tuple[str, str]]:
        ids = {oid for b in bodies if isinstance(b, dict) and isinstance(oid := b.get("id"), str)}
        if local is not None:  # only our own material comes back as an exact echo
            ids = {oid for oid in ids if oid in local}
        return self._ours(ids) if ids else set()

    def match(self, body: Any, ours: set[tuple[str, str]] | None = None,
              version: str | _Unset | None = _UNSET) -> Echo | None:
        """The echo an incoming (unvalidated) object is, or None (``version``: its
        :func:`_version_of` when the caller has it, or None when its id is not among
        ``ours``: it then cannot be an exact echo)."""
        if not isinstance(body, dict):
            return None
        oid = body.get("id")
        if not isinstance(oid, str):
            return None
        if ours is None:
            ours = self._ours_released([body])
        if isinstance(version, _Unset):
            version = _version_of(body)
        if version is not None and (oid, version) in ours:                 # (1)
            return Echo(oid, "support" if body.get("type") in SUPPORT_TYPES else "id")
        if not self.by_content:  # nothing released to this partner: no content echo
            return None
        for key in content_keys(body):                                    # (2)
            mine = self.by_content.get(key)
            if mine is not None and mine != oid:
                return Echo(mine, key[0])
        return None

    def classify(self, objects: Iterable[Any], *,
                 local: Container[str] | None = None) -> dict[int, Echo]:
        """Echoes among a page of objects, by position.  ``local``: the page's ids the
        store holds as material created here, when the caller has read them (the intake
        path reads the page's origins once): no other id can be an exact echo, so the
        release records are read for those alone — none on a page of new ids."""
        bodies = list(objects)
        ours = self._ours_released(bodies, local)
        released = {oid for oid, _ in ours}  # only their versions can be exact echoes
        found: dict[int, Echo] = {}
        for i, body in enumerate(bodies):
            oid = body.get("id") if isinstance(body, dict) else None
            version = _version_of(body) if isinstance(oid, str) and oid in released else None
            echo = self.match(body, ours, version)
            if echo is not None:
                found[i] = echo
        return found
