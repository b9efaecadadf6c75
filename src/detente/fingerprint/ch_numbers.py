"""Channel 3: sub-threshold digits of coordinates and of timestamps.

Coordinates: a ``location``'s latitude and longitude move by whole micro-degrees, at most
``max_metres`` (and never more than half the object's own stated ``precision``); the
offset is one symbol of a ``2h + 1``-ary alphabet.

Timestamps: digits are *appended below the precision the timestamp states* (a timestamp
given to the second (or as ``.000``) gains milliseconds, one given to the millisecond gains
microseconds;
never more than six fractional digits, which every STIX parser accepts), so the instant
moves by less than its own stated precision.  Only observation and validity times are
marked: ``first_seen``/``last_seen``, ``first_observed``/``last_observed`` and
``valid_from``/``valid_until``.  ``created`` and ``modified`` identify the object version
and ``published`` is a fact recipients cross-check, so they are never touched.  A
start/end pair that falls within the same second is left alone so that the order of the
pair can never flip.
"""

from __future__ import annotations

import math
import re
from typing import Any

from detente.fingerprint.keyed import plain_hex
from detente.fingerprint.slots import JSON, ChannelContext, Slot

NAME = "number"
_UNIT = 1e-6  # degrees
_METRES_PER_DEGREE = 111_320.0
_COORDS = (("latitude", 90.0), ("longitude", 180.0))
TIME_PAIRS = (
    ("first_seen", "last_seen"),
    ("first_observed", "last_observed"),
    ("valid_from", "valid_until"),
)
_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]00:00)")


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
    metres = ctx.params.max_metres
    precision = _number(view.get("precision"))
    if precision is not None and precision > 0:
        metres = min(metres, precision / 2.0)
    slots: list[Slot] = []
    for name, limit in _COORDS:
        value = _number(view.get(name))
        if value is None or latitude is None:
            continue
        shrink = math.cos(math.radians(latitude)) if name == "longitude" else 1.0
        scale = _METRES_PER_DEGREE * shrink
        half = min((ctx.params.max_number_q - 1) // 2, int(metres / (scale * _UNIT)))
        base = round(value, 6)
        if half < 1 or abs(base) + half * _UNIT > limit:
            continue
        loc = {"field": name, "base": base, "half": half}
        slots.append(Slot(plain_hex(object_key, NAME, name), NAME, 2 * half + 1, loc))
    return slots


def _time_slots(view: JSON, object_key: str) -> list[Slot]:
    slots: list[Slot] = []
    for pair in TIME_PAIRS:
        parsed = {name: _TIMESTAMP.fullmatch(str(view.get(name, ""))) for name in pair}
        seconds = [m.group(1) for m in parsed.values() if m]
        if len(seconds) == 2 and seconds[0] == seconds[1]:
            continue
        for name, match in parsed.items():
            if not isinstance(view.get(name), str) or match is None:
                continue
            frac = match.group(2) or ""
            frac = "" if not frac.strip("0") else frac  # ".000" states no sub-second fact
            digits = min(3, 6 - len(frac))
            if digits < 1:
                continue
            loc = {"field": name, "base": match.group(1), "frac": frac, "digits": digits}
            slots.append(Slot(plain_hex(object_key, NAME, name), NAME, 10**digits, loc))
    return slots


def plan(view: JSON, object_key: str, ctx: ChannelContext) -> list[Slot]:
    """Coordinate and timestamp slots of one view."""
    return _coordinate_slots(view, object_key, ctx) + _time_slots(view, object_key)


def write(view: JSON, assigned: list[tuple[Slot, int]], ctx: ChannelContext) -> list[Slot]:
    """Set the marked digits."""
    for slot, symbol in assigned:
        loc = slot.loc
        if "half" in loc:
            view[loc["field"]] = round(loc["base"] + (symbol - loc["half"]) * _UNIT, 6)
        else:
            digits = f"{symbol:0{loc['digits']}d}"
            view[loc["field"]] = f"{loc['base']}.{loc['frac']}{digits}Z"
    return [slot for slot, _ in assigned]


def read(obj: JSON, slot: Slot) -> int | None:
    """The symbol shown by the artifact, or None when the digits are gone or foreign."""
    loc = slot.loc
    if "half" in loc:
        value = _number(obj.get(loc["field"]))
        if value is None:
            return None
        symbol = round((value - loc["base"]) / _UNIT) + loc["half"]
        return symbol if 0 <= symbol < slot.q else None
    raw = obj.get(loc["field"])
    match = _TIMESTAMP.fullmatch(raw.strip()) if isinstance(raw, str) else None
    if match is None or match.group(1) != loc["base"]:
        return None
    frac = match.group(2) or ""
    head, width = len(loc["frac"]), loc["digits"]
    if not frac.startswith(loc["frac"]) or len(frac) < head + width:
        return None
    return int(frac[head : head + width])
