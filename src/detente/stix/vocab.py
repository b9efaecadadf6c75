"""The markings vocabulary: well-known marking-definition and extension-definition ids.

Hand-written constants because these ids are fixed by OASIS (STIX 2.1 section 7.2.1.4 for
TLP 1.0; the TLP 2.0, IEP 2.0 and ACS 3.0 extension-definitions in
oasis-open/cti-stix-common-objects) and policy code must compare against them without
loading anything.  ``canonical_json`` is RFC 8785 (JCS), the form the ledger hashes and signs.
"""

from __future__ import annotations

from typing import Any, Final

import rfc8785

__all__ = [
    "ACS_3_0_EXTENSION",
    "IEP_2_0_EXTENSION",
    "TLP_1_0_IDS",
    "TLP_1_0_TO_2_0",
    "TLP_2_0_EXTENSION",
    "TLP_2_0_IDS",
    "TLP_AMBER",
    "TLP_AMBER_STRICT",
    "TLP_CLEAR",
    "TLP_GREEN",
    "TLP_RED",
    "canonical_json",
    "tlp_level",
]

#: extension-definition of the TLP 2.0 marking-definitions (property-extension).
TLP_2_0_EXTENSION: Final = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
#: extension-definition of FIRST IEP 2.0 markings.
IEP_2_0_EXTENSION: Final = "extension-definition--762e2e97-ee51-43e5-a9ea-165fbb862c4a"
#: extension-definition of ISA ACS 3.0 markings ("isa-acs-3-0").
ACS_3_0_EXTENSION: Final = "extension-definition--3a65884d-005a-4290-8335-cb2d778a83ce"

# TLP 2.0 marking-definitions (cti-stix-common-objects, objects/marking-definition/).
TLP_CLEAR: Final = "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
TLP_GREEN: Final = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
TLP_AMBER: Final = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
TLP_AMBER_STRICT: Final = "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"
TLP_RED: Final = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"

#: TLP 2.0 level ("clear", "green", "amber", "amber+strict", "red") -> marking-definition id.
TLP_2_0_IDS: Final[dict[str, str]] = {
    "clear": TLP_CLEAR,
    "green": TLP_GREEN,
    "amber": TLP_AMBER,
    "amber+strict": TLP_AMBER_STRICT,
    "red": TLP_RED,
}

#: TLP 1.0 level -> marking-definition id (STIX 2.1 section 7.2.1.4).
TLP_1_0_IDS: Final[dict[str, str]] = {
    "white": "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
    "green": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
    "amber": "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
    "red": "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
}

#: TLP 1.0 level -> its TLP 2.0 meaning (FIRST TLP 2.0: WHITE became CLEAR; AMBER stays
#: AMBER, not AMBER+STRICT).
TLP_1_0_TO_2_0: Final[dict[str, str]] = {
    "white": "clear",
    "green": "green",
    "amber": "amber",
    "red": "red",
}

_LEVEL_BY_ID: Final[dict[str, str]] = {
    **{mid: level for level, mid in TLP_2_0_IDS.items()},
    **{mid: TLP_1_0_TO_2_0[level] for level, mid in TLP_1_0_IDS.items()},
}


def tlp_level(marking_id: str) -> str | None:
    """The TLP 2.0 level of a well-known TLP 1.0 or 2.0 marking-definition id, else None."""
    return _LEVEL_BY_ID.get(marking_id)


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 canonical JSON (sorted keys, ECMAScript number form, UTF-8)."""
    data: bytes = rfc8785.dumps(obj)
    return data
