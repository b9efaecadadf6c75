"""Leak attribution: collusion-resistant fingerprint codes in partners' views, and trace.

Public surface: :class:`Fingerprinter` (``embed``, ``trace``, ``capacity``),
:class:`FingerprintParams`, the records the release path keeps (:class:`EmbedResult`,
:class:`EmbedRecord`, :class:`Release`), :class:`Artifact`, :class:`TraceReport`,
:class:`Suspect`, the release rule (:func:`fingerprinted`, :func:`decide`: is a view
fingerprinted, and why) and the errors.  See ``docs/fingerprinting.md``.
"""

from detente.fingerprint.artifact import Artifact
from detente.fingerprint.errors import (
    ArtifactError,
    FingerprintError,
    ParamsError,
    ReleaseRecordError,
    VariantDictionaryError,
)
from detente.fingerprint.fingerprinter import Fingerprinter
from detente.fingerprint.params import FingerprintParams
from detente.fingerprint.policy import FingerprintDecision, decide, fingerprinted
from detente.fingerprint.records import EmbedRecord, EmbedResult, Release, ReleaseRecordLike
from detente.fingerprint.report import MatchedRelease, Suspect, TraceReport

__all__ = [
    "Artifact",
    "ArtifactError",
    "EmbedRecord",
    "EmbedResult",
    "FingerprintDecision",
    "FingerprintError",
    "FingerprintParams",
    "Fingerprinter",
    "MatchedRelease",
    "ParamsError",
    "Release",
    "ReleaseRecordError",
    "ReleaseRecordLike",
    "Suspect",
    "TraceReport",
    "VariantDictionaryError",
    "decide",
    "fingerprinted",
]
