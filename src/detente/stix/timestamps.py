"""STIX 2.1 timestamps: parse, normalise, and the node clock.

STIX timestamps are RFC 3339 in UTC with a literal ``Z`` and any number of sub-second
digits.  Stored versions use one fixed-width form (nine sub-second digits) so that text
order is time order on every backend and two distinct versions never collide.
``date_added`` is kept as integer microseconds since the epoch (TAXII precision).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from detente.errors import ValidationError

__all__ = [
    "format_micros",
    "micros_from_stix",
    "normalise",
    "now_micros",
    "parse_timestamp",
]

_TS = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$")


def parse_timestamp(value: object, *, field: str = "timestamp") -> tuple[datetime, str]:
    """Check a STIX timestamp; return (datetime to the microsecond, nine-digit fraction)."""
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string timestamp, got {type(value).__name__}")
    m = _TS.match(value)
    if m is None:
        raise ValidationError(
            f"{field} {value!r} is not a STIX timestamp",
            hint="use RFC 3339 UTC with a Z, e.g. 2016-05-12T08:17:27.000Z",
        )
    year, month, day, hour, minute, second, frac = m.groups()
    frac9 = (frac or "").ljust(9, "0")
    try:
        dt = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            int(frac9[:6]), tzinfo=UTC,
        )
    except ValueError as exc:
        raise ValidationError(f"{field} {value!r} is not a valid date or time: {exc}") from None
    return dt, frac9


def normalise(value: object, *, field: str = "timestamp") -> str:
    """Fixed-width form ``YYYY-MM-DDTHH:MM:SS.fffffffffZ`` (text order == time order)."""
    dt, frac9 = parse_timestamp(value, field=field)
    text = str(value)
    if text[0] != "0":  # the matched text's first 19 characters are what strftime prints
        return text[:19] + "." + frac9 + "Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + "." + frac9 + "Z"


def micros_from_stix(value: object, *, field: str = "timestamp") -> int:
    """A STIX timestamp as integer microseconds since the epoch (sub-µs digits dropped)."""
    dt, _ = parse_timestamp(value, field=field)
    return int(dt.timestamp()) * 1_000_000 + dt.microsecond


def format_micros(micros: int) -> str:
    """Integer microseconds as a TAXII/STIX timestamp with microsecond precision."""
    secs, us = divmod(micros, 1_000_000)
    return datetime.fromtimestamp(secs, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{us:06d}Z"


def now_micros() -> int:
    """The wall clock in integer microseconds (UTC)."""
    return time.time_ns() // 1000
