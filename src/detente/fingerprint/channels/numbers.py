"""Channel 3: coordinates, moved within the precision the object itself states.

A ``location`` that states its ``precision`` (metres) has each of latitude and longitude
moved by ``+d`` or ``-d`` (one *binary* position each), with ``d`` at most a third of the
stated precision and at most ``max_metres``; a location without a stated precision is left
alone (adding digits would claim a precision the source never gave).  Anything else than
the two marked values (a rounded or re-projected coordinate) reads as an erasure.

Timestamps are never marked: ``created``/``modified`` identify the object version, and any
other timestamp would gain digits below the precision it was stated with (a timestamp given
to the second must not gain milliseconds).  ``TIME_PAIRS`` lists the observation and
validity times that content matching ignores.
"""

from __future__ import annotations

import math
from typing import Any

from detente.fingerprint.channels.slots import JSON, ChannelContext, Slot
from detente.fingerprint.keyed import plain_hex

NAME = "number"
_UNIT = 1e-6  # degrees
_METRES_PER_DEGREE = 111_320.0
_COORDS = (("latitude", 90.0), ("longitude", 180.0))
TIME_PAIRS = (
    ("first_seen", "last_seen"),
    ("first_observed", "last_observed"),
    ("valid_from", "valid_until"),
)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            parsed = float(value.strip())
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


def _coordinate_slots(view: JSON, object_key: str, ctx: ChannelContext) -> list[Slot]:
    if view.get("type") != "location":
        return []
    latitude = _number(view.get("latitude"))
    precision = _number(view.get("precision"))
    if latitude is None or precision is None or precision <= 0:
        return []
    metres = min(ctx.params.max_metres, precision / 3.0)
    slots: list[Slot] = []
    for name, limit in _COORDS:
        value = _number(view.get(name))
        if value is None:
            continue
        shrink = math.cos(math.radians(latitude)) if name == "longitude" else 1.0
        step = int(metres / (_METRES_PER_DEGREE * max(shrink, 1e-6) * _UNIT))
        if step < 1 or abs(value) + step * _UNIT > limit:
            continue
        loc = {"field": name, "base": value, "step": step}
        slots.append(Slot(plain_hex(object_key, NAME, name), NAME, 2, loc))
    return slots


def plan(view: JSON, object_key: str, ctx: ChannelContext) -> list[Slot]:
    """Coordinate positions of one view (timestamps are never marked)."""
    return _coordinate_slots(view, object_key, ctx)


def write(view: JSON, assigned: list[tuple[Slot, int]], ctx: ChannelContext) -> list[Slot]:
    """Move each marked coordinate by one step down (symbol 0) or up (symbol 1)."""
    for slot, symbol in assigned:
        loc = slot.loc
        view[loc["field"]] = round(loc["base"] + (2 * symbol - 1) * loc["step"] * _UNIT, 9)
    return [slot for slot, _ in assigned]


def read(obj: JSON, slot: Slot) -> int | None:
    """The symbol shown by the artifact, or None when the value is neither marked value."""
    loc = slot.loc
    if "step" not in loc:
        return None
    value = _number(obj.get(loc["field"]))
    if value is None:
        return None
    offset = (value - loc["base"]) / (loc["step"] * _UNIT)
    if abs(offset - 1.0) < 0.25:
        return 1
    if abs(offset + 1.0) < 0.25:
        return 0
    return None
