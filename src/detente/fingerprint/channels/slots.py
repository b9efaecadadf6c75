"""What every channel shares: the position (slot) model and which objects may carry marks.

A *slot* is one code position: an id derived from (object version, channel, place), an
alphabet size ``q`` and a locator telling the channel where to write and read it.  Slot ids
depend only on the pre-fingerprint view, so every partner who receives the same object
version gets a symbol at the same positions: that is what makes merged copies traceable.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from detente.fingerprint.channels.variants import VariantDictionary
from detente.fingerprint.params import FingerprintParams

JSON = dict[str, Any]

# Objects that never carry marks: SCO ids are derived from their properties, and marking or
# extension definitions must stay byte-identical everywhere they are used.
_UNMARKED_TYPES = frozenset(
    {"marking-definition", "extension-definition", "language-content", "bundle"}
)


@dataclass(frozen=True, slots=True)
class Slot:
    """One code position in one object version."""

    position: str
    channel: str
    q: int
    loc: JSON = field(hash=False, compare=False)


@dataclass(frozen=True)
class ChannelContext:
    """What a channel needs: the node secret, the parameters, the variant dictionary."""

    secret: bytes
    params: FingerprintParams
    dictionary: VariantDictionary


def markable(view: JSON) -> bool:
    """True for SDOs and SROs (they have ``created``); SCOs and definitions stay untouched."""
    kind = view.get("type")
    return (
        isinstance(kind, str)
        and kind not in _UNMARKED_TYPES
        and isinstance(view.get("created"), str)
        and isinstance(view.get("id"), str)
    )


def canonical_json(value: Any) -> str:
    """Key-sorted compact JSON: the same for any re-serialisation of the same value."""
    if type(value) is str:  # most list elements: what json.dumps itself calls for one
        return _encode_string(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_encode_string: Callable[[str], str] = json.encoder.encode_basestring
