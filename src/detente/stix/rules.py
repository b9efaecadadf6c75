"""The STIX 2.1 facts validation checks against, as plain tables.

Hand-written rather than derived from the OASIS JSON schemas: the schemas are a
``$ref`` web that a generic JSON-schema validator walks in milliseconds per object, while
ingest has microseconds.  These tables hold only what ``validate`` checks (required
properties, timestamp properties, order constraints, cheap property types), each taken
from the STIX 2.1 specification (OASIS Standard, 10 June 2021) section named beside it.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "ANY_CASE_ID_RE",
    "BASE64_RE",
    "BOOL_PROPS",
    "EXTENSION_NAME_RE",
    "IDENTITY_ID_RE",
    "ID_RE",
    "MARKING_ID_RE",
    "META_REQUIRED",
    "ORDERED_PAIRS",
    "PROPERTY_NAME_RE",
    "SCO_REQUIRED",
    "SDO_REQUIRED",
    "STRING_LIST_PROPS",
    "STRING_PROPS",
    "TIMESTAMP_PROPS",
    "TYPE_RE",
]

#: 2.9 type names: a-z, 0-9, hyphen; no leading, trailing or double hyphen (length 3-250 is
#: checked apart: a counted repeat here would cost more than the check).
TYPE_RE: Final = re.compile(r"[a-z0-9](?:-?[a-z0-9])+")
#: 2.9 identifiers: ``<type>--<RFC 4122 UUID>`` (versions 1-5, variant 10xx), lower-case hex,
#: as RFC 4122 outputs them and as a node stores them.
ID_RE: Final = re.compile(
    r"([a-z0-9](?:-?[a-z0-9])+)--"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
)
#: The same with hex in either case: RFC 4122 reads hex case-insensitively on input, so
#: ``validate`` folds such an identifier to lower case (see ``validate.fold_id_case``).
ANY_CASE_ID_RE: Final = re.compile(
    r"[a-z0-9](?:-?[a-z0-9])+--"
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-5][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}"
)
_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
IDENTITY_ID_RE: Final = re.compile("identity--" + _UUID)
MARKING_ID_RE: Final = re.compile("marking-definition--" + _UUID)
#: 3.1 property names: a-z, 0-9, underscore; 3-250 characters (``id`` is the one shorter).
PROPERTY_NAME_RE: Final = re.compile(r"[a-z0-9_]{3,250}")
#: 2.1 binary: RFC 4648 base64 (padding included; the length is checked apart).
BASE64_RE: Final = re.compile(r"[A-Za-z0-9+/]*={0,2}")
#: 7.3 extension names that are not extension-definition ids (e.g. ``ntfs-ext``, ``x-acme-ext``).
EXTENSION_NAME_RE: Final = re.compile(r"[a-z0-9](?:-?[a-z0-9])+")

# 4.x SDOs and 5.x SROs: properties required beyond the common ones (type, spec_version, id,
# created, modified).  Alternatives ("one of") are checked in validate.py.
SDO_REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "attack-pattern": ("name",),
    "campaign": ("name",),
    "course-of-action": ("name",),
    "grouping": ("context", "object_refs"),
    "identity": ("name",),
    "incident": ("name",),
    "indicator": ("pattern", "pattern_type", "valid_from"),
    "infrastructure": ("name",),
    "intrusion-set": ("name",),
    "location": (),
    "malware": ("is_family",),
    "malware-analysis": ("product",),
    "note": ("content", "object_refs"),
    "observed-data": ("first_observed", "last_observed", "number_observed"),
    "opinion": ("opinion", "object_refs"),
    "report": ("name", "published", "object_refs"),
    "threat-actor": ("name",),
    "tool": ("name",),
    "vulnerability": ("name",),
    "relationship": ("relationship_type", "source_ref", "target_ref"),
    "sighting": ("sighting_of_ref",),
}

# 7.x meta objects: their own required sets (spec_version and created always).
META_REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "marking-definition": ("spec_version", "created"),
    "language-content": ("spec_version", "created", "modified", "object_ref", "contents"),
    "extension-definition": (
        "spec_version", "created", "modified", "created_by_ref", "name", "schema", "version",
        "extension_types",
    ),
}  # fmt: skip

# 6.x SCOs: properties required beyond ``type`` and ``id`` ("one of" rules in validate.py).
SCO_REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "artifact": (),
    "autonomous-system": ("number",),
    "directory": ("path",),
    "domain-name": ("value",),
    "email-addr": ("value",),
    "email-message": ("is_multipart",),
    "file": (),
    "ipv4-addr": ("value",),
    "ipv6-addr": ("value",),
    "mac-addr": ("value",),
    "mutex": ("name",),
    "network-traffic": ("protocols",),
    "process": (),
    "software": ("name",),
    "url": ("value",),
    "user-account": (),
    "windows-registry-key": (),
    "x509-certificate": (),
}

#: Properties that hold a STIX timestamp, wherever they appear at the top level.
TIMESTAMP_PROPS: Final = frozenset(
    {
        "created", "modified", "first_seen", "last_seen", "valid_from", "valid_until",
        "published", "first_observed", "last_observed", "start", "end", "start_time",
        "stop_time", "end_time", "object_modified", "analysis_started", "analysis_ended",
        "submitted", "ctime", "mtime", "atime", "created_time", "modified_time", "date",
        "account_created", "account_expires", "credential_last_changed",
        "account_first_login", "account_last_login", "validity_not_before",
        "validity_not_after",
    }
)  # fmt: skip

#: (earlier, later, strict): ``later`` must not precede (strict: must follow) ``earlier``.
ORDERED_PAIRS: Final = (
    ("created", "modified", False),  # 3.2
    ("valid_from", "valid_until", True),  # 4.7 indicator
    ("first_seen", "last_seen", False),  # 4.3, 4.8, 4.9, 4.10, 4.13, 4.16, 5.2
    ("first_observed", "last_observed", False),  # 4.14
    ("start", "end", False),  # 6.12 network-traffic
    ("analysis_started", "analysis_ended", False),  # 4.11
)

STRING_PROPS: Final = frozenset(
    {
        "name", "description", "pattern", "pattern_type", "pattern_version",
        "relationship_type", "lang", "context", "content", "abstract", "identity_class",
        "definition_type", "product", "opinion", "contact_information", "schema",
    }
)  # fmt: skip

STRING_LIST_PROPS: Final = frozenset(
    {
        "labels", "aliases", "roles", "sectors", "goals", "personal_motivations",
        "secondary_motivations", "malware_types", "tool_types", "indicator_types",
        "infrastructure_types", "threat_actor_types", "report_types",
        "implementation_languages", "architecture_execution_envs", "capabilities",
        "extension_types", "protocols", "authors",
    }
)  # fmt: skip

BOOL_PROPS: Final = frozenset(
    {"revoked", "is_family", "is_multipart", "is_active", "defanged", "summary"}
)
