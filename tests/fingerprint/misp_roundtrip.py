"""misp-stix in a child process: make a MISP-derived STIX 2.1 event, or import bundles.

misp-stix pulls in STIX 1 libraries whose vendored ``six`` installs a meta-path importer
that raises ImportWarning under this project's warnings-as-errors test configuration, so
the tests run it here, in a separate interpreter: ``python misp_roundtrip.py make`` prints
the bundle; ``python misp_roundtrip.py import`` reads a JSON list of bundles on stdin and
prints, per bundle, the sorted (type, value) pairs of the MISP event's attributes.
"""

from __future__ import annotations

import json
import sys
import warnings

warnings.simplefilter("ignore")

import stix2  # noqa: E402
from misp_stix_converter import InternalSTIX2toMISPParser, MISPtoSTIX21Parser  # noqa: E402
from pymisp import MISPEvent  # noqa: E402


def make() -> dict[str, object]:
    event = MISPEvent()
    event.info = "Raqqa relay network supporting external operations"
    event.distribution, event.threat_level_id, event.analysis = 0, 2, 1
    event.add_tag("tlp:amber")
    for k in range(6):
        event.add_attribute("ip-dst", f"198.51.100.{k + 1}", comment="relay", to_ids=k % 2 == 0)
    for k in range(5):
        event.add_attribute("domain", f"relay-{k}.example.net", to_ids=k % 2 == 1)
    for k in range(5):
        event.add_attribute("md5", f"{k + 7:032x}", to_ids=False)
    parser = MISPtoSTIX21Parser()
    parser.parse_misp_event(event.to_dict())
    return dict(json.loads(parser.bundle.serialize()))


def attributes(bundle: dict[str, object]) -> list[list[str]]:
    parser = InternalSTIX2toMISPParser()
    parser.load_stix_bundle(stix2.parse(json.dumps(bundle), allow_custom=True))
    parser.parse_stix_bundle()
    return sorted([str(a.type), str(a.value)] for a in parser.misp_event.attributes)


if __name__ == "__main__":
    if sys.argv[1:] == ["make"]:
        print(json.dumps(make()))
    else:
        print(json.dumps([attributes(b) for b in json.loads(sys.stdin.read())]))
