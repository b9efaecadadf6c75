"""The fingerprinter: one node secret, the code, and the four channels.

Hand-written: no library implements Tardos-family codes, and none embeds them in STIX.
``embed`` is called by the release path for every view it serves; ``trace`` is called by
the CLI and the analyst UI with a leaked artifact and the node's release records.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from detente.fingerprint import ch_lists, ch_numbers, ch_text, decoys
from detente.fingerprint.artifact import Artifact
from detente.fingerprint.errors import FingerprintError
from detente.fingerprint.index import ReleaseIndex
from detente.fingerprint.keyed import bias_vector, draw_symbol, keyed_hex
from detente.fingerprint.params import FingerprintParams
from detente.fingerprint.records import EmbedRecord, EmbedResult, PositionRecord, ReleaseRecordLike
from detente.fingerprint.report import TraceReport
from detente.fingerprint.slots import JSON, ChannelContext, Slot, markable
from detente.fingerprint.trace import run_trace
from detente.fingerprint.variants import VariantDictionary, default_dictionary

_CHANNELS = (ch_lists, ch_text, ch_numbers)
_MIN_SECRET = 16
#: keyed laws kept (each at most dirichlet_max_q floats): memory stays bounded whatever
#: the number of views released (it held one law per position, ~32 KB each, for ever)
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

    # -- embedding --------------------------------------------------------------------
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

    def embed(self, view: JSON, partner: str, *, object_key: str) -> EmbedResult:
        """The partner's view with its symbols embedded, and the record of what was embedded.

        Deterministic for (object_key, partner, secret): serving the same object version to
        the same partner twice yields the same bytes.
        """
        _check_embed_args(view, partner, object_key)
        served: JSON = copy.deepcopy(view)
        written: list[PositionRecord] = []
        for ch in _CHANNELS:
            slots = ch.plan(view, object_key, self._ctx) if markable(view) else []
            assigned = [(s, self.symbol(s.position, s.q, partner)) for s in slots]
            kept = {s.position for s in ch.write(served, assigned, self._ctx)}
            written.extend(PositionRecord(s, sym) for s, sym in assigned if s.position in kept)
        decoy = decoys.make_decoy(view, partner, object_key, self._ctx)
        if decoy is not None:
            decoys.attach(served, decoy)
        fid = "fp--" + keyed_hex(self._ctx.secret, "fingerprint-id", object_key, partner, length=24)
        decoy_rows = ({"id": decoy["id"], "value": decoys.decoy_value(decoy)},) if decoy else ()
        record = EmbedRecord(fid, partner, object_key, tuple(written), decoy_rows)
        return EmbedResult(served, record, (decoy,) if decoy else ())

    # -- tracing ----------------------------------------------------------------------
    def index(self, releases: Iterable[ReleaseRecordLike]) -> ReleaseIndex:
        """Index release records once, for several traces over the same releases."""
        return ReleaseIndex(self, self._ctx.dictionary).add_all(releases)

    def trace(
        self, artifact: Artifact, releases: Iterable[ReleaseRecordLike] | ReleaseIndex
    ) -> TraceReport:
        """Rank the recipients the artifact came from (see :mod:`detente.fingerprint.trace`)."""
        return run_trace(self, self._ctx, artifact, releases)


def _check_embed_args(view: Any, partner: Any, object_key: Any) -> None:
    if not isinstance(view, dict) or not isinstance(view.get("type"), str):
        raise FingerprintError("embed needs a STIX object (a JSON object with a 'type')")
    if not isinstance(partner, str) or not partner:
        raise FingerprintError("embed needs a non-empty partner id")
    if not isinstance(object_key, str) or not object_key:
        raise FingerprintError("embed needs a non-empty object_key (e.g. 'id|modified')")
