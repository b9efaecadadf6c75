"""Errors of the fingerprint capability, all under :class:`detente.errors.DetenteError`."""

from __future__ import annotations

from detente.errors import ConfigError, DetenteError, ValidationError


class FingerprintError(DetenteError):
    """Base of every fingerprinting failure."""


class ArtifactError(FingerprintError, ValidationError):
    """A leaked artifact handed to ``trace`` cannot be read (wrong format, too large, hostile)."""


class ReleaseRecordError(FingerprintError, ValidationError):
    """A release record (or its embed record) is malformed or was not made with this secret."""


class VariantDictionaryError(FingerprintError, ConfigError):
    """The curated variant dictionary breaks a rule the text channel relies on."""


class ParamsError(FingerprintError, ConfigError):
    """Fingerprint parameters are out of range."""
