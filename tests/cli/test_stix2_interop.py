"""Objects built with the `stix2` library ingest and export back equal (interoperability)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import stix2
from tests.cli.helpers import run


def _objects() -> list[stix2.base._STIXBase]:
    author = stix2.Identity(name="CERT-FR", identity_class="organization")
    malware = stix2.Malware(name="Amaq dropper", is_family=False, created_by_ref=author)
    ind = stix2.Indicator(name="C2", pattern="[ipv4-addr:value = '198.51.100.9']",
                          pattern_type="stix", valid_from="2025-11-01T00:00:00Z",
                          created_by_ref=author, labels=["isis", "c2"], confidence=70,
                          object_marking_refs=[stix2.TLP_GREEN])
    rel = stix2.Relationship(ind, "indicates", malware, created_by_ref=author)
    ip = stix2.IPv4Address(value="198.51.100.9")
    sighting = stix2.Sighting(sighting_of_ref=ind, count=2, created_by_ref=author)
    report = stix2.Report(name="Raqqa C2", published="2025-11-02T00:00:00Z",
                          object_refs=[ind, malware, rel], report_types=["threat-actor"],
                          created_by_ref=author)
    newer = ind.new_version(name="C2 (confirmed)", confidence=90)
    return [author, malware, ind, rel, ip, sighting, report, newer]


def test_stix2_objects_ingest_and_export_back_equal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "us"
    assert run(capsys, "init", "--home", str(home), "--name", "us").code == 0
    objs = _objects()
    bundle = stix2.Bundle(objects=objs, allow_custom=False)
    src = tmp_path / "in.json"
    src.write_text(bundle.serialize())
    r = run(capsys, "ingest", "--home", str(home), str(src), "--json")
    assert r.code == 0, r.out
    assert orjson.loads(r.out)["stored"] == len(objs)
    out = tmp_path / "out.json"
    assert run(capsys, "export", "--home", str(home), "--all-versions",
               "--output", str(out)).code == 0
    exported = stix2.parse(out.read_text(), allow_custom=True)
    by_key = {(o.id, str(o.get("modified", ""))): o for o in exported.objects}
    for original in objs:
        back = by_key[(original.id, str(original.get("modified", "")))]
        assert orjson.loads(back.serialize()) == orjson.loads(original.serialize())
