"""STIX 2.1 objects for detente: validation, input reading, bundles and markings vocabulary.

``validate`` is the one way an object enters a node; what it returns, a ``StixObject``, is
valid by construction.  ``iter_objects`` reads every input form ingest accepts and
``make_bundle`` writes exports.
"""

from __future__ import annotations

from detente.stix.bundle import DecodeFailure, Position, iter_objects, make_bundle
from detente.stix.errors import PatternError, StixValidationError
from detente.stix.model import UNVERSIONED, StixObject
from detente.stix.patterns import simple_comparisons
from detente.stix.timestamps import (
    format_micros,
    micros_from_stix,
    normalise,
    now_micros,
    parse_timestamp,
)
from detente.stix.validate import validate, validate_bytes
from detente.stix.vocab import (
    ACS_3_0_EXTENSION,
    IEP_2_0_EXTENSION,
    TLP_1_0_IDS,
    TLP_2_0_EXTENSION,
    TLP_2_0_IDS,
    canonical_json,
    tlp_level,
)

__all__ = [
    "ACS_3_0_EXTENSION",
    "IEP_2_0_EXTENSION",
    "TLP_1_0_IDS",
    "TLP_2_0_EXTENSION",
    "TLP_2_0_IDS",
    "UNVERSIONED",
    "DecodeFailure",
    "PatternError",
    "Position",
    "StixObject",
    "StixValidationError",
    "canonical_json",
    "format_micros",
    "iter_objects",
    "make_bundle",
    "micros_from_stix",
    "normalise",
    "now_micros",
    "parse_timestamp",
    "simple_comparisons",
    "tlp_level",
    "validate",
    "validate_bytes",
]
