"""The real published STIX 2.1 corpus the tests read (OASIS examples, reference-server
data; see data/stix-real/MANIFEST.md), vendored so a checkout is self-contained."""

from pathlib import Path

REAL_DATA = Path(__file__).resolve().parent / "data" / "stix-real"
