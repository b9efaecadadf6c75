"""MISP in and out, with CIRCL's own converters (misp-stix, PyMISP).

MISP is what most partners run.  ``detente ingest`` takes MISP events (single, arrays, REST
API answers, feed directories: :mod:`detente.misp.intake`) and stores the STIX 2.1 objects
misp-stix makes of them; ``detente export --format misp`` writes what a partner may see as a
MISP feed directory a MISP instance can add as a feed (:mod:`detente.misp.feed`).  Nothing
here converts by hand: misp-stix converts each way, PyMISP writes the feed's metadata.
"""

from detente.misp.intake import (
    MispError,
    MispEvent,
    convert_event,
    is_feed_dir,
    is_misp_document,
    iter_events,
    read_feed_dir,
)

__all__ = [
    "MispError",
    "MispEvent",
    "convert_event",
    "is_feed_dir",
    "is_misp_document",
    "iter_events",
    "read_feed_dir",
]
