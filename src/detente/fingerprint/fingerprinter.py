"""The fingerprinter: one node secret, the binary code, and the channels.

Hand-written: no library implements Tardos-family codes, and none embeds them in STIX.
``embed`` is called by the release path for every view it serves (and returns views the
policy leaves plain untouched, without a fingerprint id); ``trace`` is called by the CLI
and the analyst UI with a leaked artifact and the node's release records.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import orjson

from detente.fingerprint.artifact import Artifact
from detente.fingerprint.channels import decoys
from detente.fingerprint.channels import lists as ch_lists
from detente.fingerprint.channels import numbers as ch_numbers
from detente.fingerprint.channels import text as ch_text
from detente.fingerprint.channels.slots import JSON, ChannelContext, Slot, canonical_json, markable
from detente.fingerprint.channels.variants import VariantDictionary, default_dictionary
from detente.fingerprint.errors import FingerprintError
from detente.fingerprint.index import ReleaseIndex
from detente.fingerprint.keyed import bias_vector, draw_symbol, keyed_hex
from detente.fingerprint.params import FingerprintParams
from detente.fingerprint.policy import FingerprintDecision, decide, fingerprinted
from detente.fingerprint.records import EmbedRecord, EmbedResult, PositionRecord, ReleaseRecordLike
from detente.fingerprint.report import TraceReport
from detente.fingerprint.trace import run_trace

_CHANNELS = (ch_lists, ch_text, ch_numbers)
_MIN_SECRET = 16
_PLAN_CACHE = 4096
#: keyed laws kept: memory stays bounded whatever the number of views released
_BIAS_CACHE = 16_384


class Fingerprinter:
    """Embeds per-partner codewords in views and traces leaked artifacts back to partners."""

    def __init__(
        self,
        secret: bytes,
        params: FingerprintParams | None = None,
        *,
        dictionary: VariantDictionary | None = None,
    ) -> None:
        if not isinstance(secret, bytes) or len(secret) < _MIN_SECRET:
            raise FingerprintError(f"the node secret must be at least {_MIN_SECRET} bytes")
        self.params = params or FingerprintParams()
        self._ctx = ChannelContext(secret, self.params, dictionary or default_dictionary())
        self._bias: dict[tuple[str, int], tuple[float, ...]] = {}
        # the release path embeds one object version for many partners in a row: its
        # positions depend on the view and the object key only, so they are planned once
        self._lock = threading.Lock()
        self._plans: OrderedDict[tuple[str, str], list[list[Slot]]] = OrderedDict()

    def __repr__(self) -> str:
        return f"Fingerprinter(secret=<hidden>, params={self.params!r})"

    # -- the code ---------------------------------------------------------------------
    def bias(self, position: str, q: int) -> tuple[float, ...]:
        """``p_i``: the keyed symbol distribution of one position (cached, bounded: the
        uniform law of a large alphabet once per ``q`` — it does not depend on the
        position — and the keyed laws of the most recent positions)."""
        p = self.params
        key = ("", q) if q > p.dirichlet_max_q else (position, q)
        hit = self._bias.get(key)
        if hit is None:
            if len(self._bias) >= _BIAS_CACHE:
                self._bias.clear()
            hit = self._bias[key] = bias_vector(
                self._ctx.secret, position, q, p.cutoff, p.dirichlet_max_q
            )
        return hit

    def symbol(self, position: str, q: int, partner: str) -> int:
        """The partner's symbol at a position: a keyed draw from ``p_i``."""
        return draw_symbol(self._ctx.secret, position, partner, self.bias(position, q))

    def _assign(self, slots: list[Slot], partner: str) -> list[tuple[Slot, int]]:
        """Each slot with the partner's symbol there (:meth:`symbol` for every slot, the
        keyed laws found in the cache at once)."""
        secret, laws, bias = self._ctx.secret, self._bias, self.bias
        large = self.params.dirichlet_max_q
        out: list[tuple[Slot, int]] = []
        for s in slots:
            q = s.q
            law = laws.get(("", q) if q > large else (s.position, q)) or bias(s.position, q)
            out.append((s, draw_symbol(secret, s.position, partner, law)))
        return out

    # -- embedding --------------------------------------------------------------------
    def decide(self, view: JSON) -> FingerprintDecision:
        """Whether ``view`` is fingerprinted under this node's parameters, and why."""
        return decide(view, self.params)

    def fingerprinted(self, view: JSON) -> bool:
        """True if ``embed`` marks ``view`` (False: released unmodified)."""
        return fingerprinted(view, self.params)

    def plan(self, view: JSON, object_key: str) -> list[Slot]:
        """Every position this view offers, in channel order."""
        if not markable(view):
            return []
        return [slot for ch in _CHANNELS for slot in ch.plan(view, object_key, self._ctx)]

    def capacity(self, view: JSON, object_key: str = "capacity") -> dict[str, int]:
        """Positions per channel that this view offers (``decoy`` counts canaries)."""
        out = {ch.NAME: 0 for ch in _CHANNELS}
        for slot in self.plan(view, object_key):
            out[slot.channel] += 1
        out["decoy"] = int(self.params.decoys and view.get("type") in decoys.CONTAINERS)
        return out

    def embed(
        self, view: JSON, partner: str, *, object_key: str, copy: bool = True,
        encoded: bytes | None = None,
    ) -> EmbedResult:
        """The partner's view with its symbols embedded, and the record of what was embedded.

        Deterministic for (object_key, partner, secret): serving the same object version to
        the same partner twice yields the same bytes.  A view the policy leaves plain (by
        default TLP:CLEAR) comes back unmodified, with an empty record and no fingerprint id.
        ``copy=False``: ``view`` is the caller's to give away (e.g. just parsed, used for
        nothing else) — it is marked in place and returned, not copied first.
        ``encoded``: the JSON bytes ``view`` was parsed from, when the caller has them —
        its positions are then cached under their digest, without encoding it again.
        """
        _check_embed_args(view, partner, object_key)
        served: JSON = _copy(view) if copy else view
        if not self.fingerprinted(view):
            return EmbedResult(served, EmbedRecord("", partner, object_key), ())
        written: list[PositionRecord] = []
        plans = self._planned(view, object_key, encoded)
        for ch, slots in zip(_CHANNELS, plans, strict=True):
            if not slots:  # a channel writes nothing without positions
                continue
            assigned = self._assign(slots, partner)
            kept = {s.position for s in ch.write(served, assigned, self._ctx)}
            written += [PositionRecord(s, sym) for s, sym in assigned if s.position in kept]
        decoy = decoys.make_decoy(view, partner, object_key, self._ctx)
        if decoy is not None:
            decoys.attach(served, decoy)
        fid = "fp--" + keyed_hex(self._ctx.secret, "fingerprint-id", object_key, partner, length=24)
        decoy_rows = ({"id": decoy["id"], "value": decoys.decoy_value(decoy)},) if decoy else ()
        record = EmbedRecord(fid, partner, object_key, tuple(written), decoy_rows)
        return EmbedResult(served, record, (decoy,) if decoy else ())

    def _planned(self, view: JSON, object_key: str, encoded: bytes | None = None
                 ) -> list[list[Slot]]:
        """Per channel, the positions of this view (cached for the next partners), keyed
        by a digest of its content: of ``encoded`` (the bytes it was parsed from) when
        given, else of its sorted-key encoding.  Equal bytes are equal views, and a digest
        of one form can only equal a digest of the other for the same JSON value."""
        key = (object_key, _digest(view) if encoded is None else _bytes_digest(encoded))
        with self._lock:
            plans = self._plans.get(key)
            if plans is not None:
                self._plans.move_to_end(key)
                return plans
        marks = markable(view)
        plans = [ch.plan(view, object_key, self._ctx) if marks else [] for ch in _CHANNELS]
        with self._lock:
            self._plans[key] = plans
            while len(self._plans) > _PLAN_CACHE:
                self._plans.popitem(last=False)
        return plans

    # -- tracing ----------------------------------------------------------------------
    def index(self, releases: Iterable[ReleaseRecordLike]) -> ReleaseIndex:
        """Index release records once, for several traces over the same releases."""
        return ReleaseIndex(self, self._ctx.dictionary).add_all(releases)

    def trace(
        self, artifact: Artifact, releases: Iterable[ReleaseRecordLike] | ReleaseIndex
    ) -> TraceReport:
        """Rank the recipients the artifact came from (see :mod:`detente.fingerprint.trace`)."""
        return run_trace(self, self._ctx, artifact, releases)


def _copy(value: Any) -> Any:
    """A deep copy of a JSON value (what views are); anything else through ``deepcopy``."""
    kind = type(value)
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}
    if kind is list:
        return [_copy(v) for v in value]
    if kind in _ATOMS:
        return value
    return copy.deepcopy(value)


_ATOMS = frozenset({str, int, float, bool, type(None)})


def _digest(view: JSON) -> str:
    """A content key of a view for the plan cache (equal views, equal keys)."""
    try:
        data = orjson.dumps(view, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # not plain JSON for orjson (e.g. an integer beyond 64 bits)
        data = canonical_json(view).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _bytes_digest(data: bytes) -> str:
    """A content key of a view's JSON bytes for the plan cache."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _check_embed_args(view: Any, partner: Any, object_key: Any) -> None:
    if not isinstance(view, dict) or not isinstance(view.get("type"), str):
        raise FingerprintError("embed needs a STIX object (a JSON object with a 'type')")
    if not isinstance(partner, str) or not partner:
        raise FingerprintError("embed needs a non-empty partner id")
    if not isinstance(object_key, str) or not object_key:
        raise FingerprintError("embed needs a non-empty object_key (e.g. 'id|modified')")
