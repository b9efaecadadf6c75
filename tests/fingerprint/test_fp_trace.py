"""Trace, through the real embed and trace code, for every leak the issue lists."""

from __future__ import annotations

import csv
import io
import json
import random
import re

import pytest
from bench._fpsim import release_all, synthetic_report
from tests.fingerprint.fp_fixtures import SECRET, world

from detente.fingerprint import (
    Artifact,
    ArtifactError,
    Fingerprinter,
    Release,
    ReleaseRecordError,
)
from detente.fingerprint.channels.slots import JSON


def _trace(objects: list[JSON], partners: int = 20) -> tuple[list[str], str]:
    w = world(partners)
    report = w.fp.trace(Artifact.from_objects(objects), w.index)
    return [s.partner for s in report.accused], report.verdict


def test_a_whole_leaked_view_names_its_recipient_only() -> None:
    w = world()
    report = w.fp.trace(Artifact.from_objects(w.views["partner-05"]), w.index)
    assert [s.partner for s in report.accused] == ["partner-05"]
    top = report.suspects[0]
    assert top.score >= top.threshold and top.threshold_bound <= 1e-3 / 20
    assert top.score_bound is not None and top.score_bound < 1e-20
    assert report.recipients == 20 and report.positions_erased == 0
    assert {e.how for e in report.evidence} == {"id"} and len(report.evidence) == 25


def test_thirty_percent_of_the_objects_is_enough() -> None:
    w = world()
    view = w.views["partner-11"]
    part = random.Random(3).sample(view, int(0.3 * len(view)))
    assert _trace(part) == (["partner-11"], "accused")


def test_reserialised_json_with_reordered_keys_and_new_whitespace() -> None:
    w = world()
    objects = [dict(reversed(list(o.items()))) for o in w.views["partner-03"]]
    data = json.dumps({"objects": objects, "type": "bundle"}, indent=4, sort_keys=True).encode()
    report = w.fp.trace(Artifact.from_bytes(data), w.index)
    assert [s.partner for s in report.accused] == ["partner-03"]


def test_ids_stripped_objects_are_matched_by_content() -> None:
    w = world()
    stripped = [{k: v for k, v in o.items() if k not in ("id", "created", "modified")}
                for o in w.views["partner-08"]]  # fmt: skip
    report = w.fp.trace(Artifact.from_objects(stripped), w.index)
    assert [s.partner for s in report.accused] == ["partner-08"]
    assert {e.how for e in report.evidence} == {"content"}


def _retype(text: str) -> str:
    """What a person re-typing an excerpt does: case, spacing and punctuation normalised."""
    text = re.sub(r"[\"“”'’,;:()]", "", text.lower())
    text = text.replace("-", " ").replace(".", " .")
    return re.sub(r"\s+", " ", text).strip()


def test_a_retyped_text_excerpt_names_its_recipient() -> None:
    w = world()
    descriptions = [o["description"] for o in w.views["partner-14"] if "description" in o]
    excerpt = _retype(" ".join(descriptions[3:15]))
    report = w.fp.trace(Artifact.from_bytes(excerpt.encode()), w.index)
    assert report.positions_read >= 40
    assert [s.partner for s in report.accused] == ["partner-14"]
    assert {e.how for e in report.evidence} <= {"text", "indicator"}


def test_an_artifact_that_was_never_released_accuses_nobody() -> None:
    w = world()
    other = synthetic_report(random.Random(999), 10)
    report = w.fp.trace(Artifact.from_objects(other), w.index)
    assert report.verdict == "never-released" and not report.suspects
    assert "never released" in report.message


def test_the_unfingerprinted_original_accuses_nobody() -> None:
    """The source's own copy leaking elsewhere matches our releases but reads no codeword."""
    w = world()
    report = w.fp.trace(Artifact.from_objects(w.objects), w.index)
    assert report.verdict == "no-accusation" and not report.accused
    assert report.evidence and report.positions_read > 100


def test_plain_text_never_released_accuses_nobody() -> None:
    w = world()
    text = b"Weather in Paris: sunny, 24 degrees. The organisation of the marathon went well."
    report = w.fp.trace(Artifact.from_bytes(text), w.index)
    assert report.verdict == "never-released" and not report.accused


def test_a_list_of_indicators_is_matched_as_evidence_without_accusing() -> None:
    w = world()
    values = [o["pattern"].split("'")[1] for o in w.views["partner-02"] if o["type"] == "indicator"]
    report = w.fp.trace(Artifact.from_bytes("\n".join(values).encode()), w.index)
    assert report.verdict == "no-accusation" and report.positions_read == 0
    assert {e.how for e in report.evidence} == {"indicator"}


def test_csv_export_of_a_view_is_traced() -> None:
    w = world()
    buffer = io.StringIO()
    columns = ["id", "type", "name", "description", "latitude", "longitude", "valid_from"]
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(w.views["partner-09"])
    report = w.fp.trace(Artifact.from_bytes(buffer.getvalue().encode()), w.index)
    assert Artifact.from_bytes(buffer.getvalue().encode()).format == "csv"
    assert [s.partner for s in report.accused] == ["partner-09"]


def test_truncated_json_is_read_as_text() -> None:
    w = world()
    data = json.dumps(w.views["partner-17"])[:-4000].encode()
    artifact = Artifact.from_bytes(data)
    assert artifact.format == "text" and artifact.notes
    assert [s.partner for s in w.fp.trace(artifact, w.index).accused] == ["partner-17"]


def test_one_report_identifies_a_lone_leaker_among_fifty() -> None:
    fp = Fingerprinter(SECRET)
    objects = synthetic_report(random.Random(50), 20)
    partners = [f"p{k:02d}" for k in range(50)]
    releases, views = release_all(fp, objects, partners)
    report = fp.trace(Artifact.from_objects(views["p31"]), releases)
    assert [s.partner for s in report.accused] == ["p31"] and report.recipients == 50


@pytest.mark.parametrize(
    "data",
    [b"[" * 100_000, b'{"objects": 5}', b"\xff\xfe\x00garbage"],
)
def test_hostile_artifacts_raise_domain_errors_or_accuse_nobody(data: bytes) -> None:
    w = world()
    try:
        artifact = Artifact.from_bytes(data)
    except ArtifactError:
        return
    assert not w.fp.trace(artifact, w.index).accused


def test_oversized_and_unknown_format_artifacts_are_refused() -> None:
    with pytest.raises(ArtifactError):
        Artifact.from_bytes(b"x" * 101, max_bytes=100)
    with pytest.raises(ArtifactError):
        Artifact.from_bytes(b"{}", format="pdf")
    with pytest.raises(ArtifactError):
        Artifact.from_bytes(b"not json", format="stix")


def test_records_from_another_secret_are_refused() -> None:
    w = world()
    stranger = Fingerprinter(b"another secret, 32 bytes long!!!")
    with pytest.raises(ReleaseRecordError):
        stranger.trace(Artifact.from_objects(w.views["partner-00"]), w.releases)


def test_report_renders_as_json_and_text() -> None:
    w = world()
    report = w.fp.trace(Artifact.from_objects(w.views["partner-01"]), w.index)
    doc = json.loads(json.dumps(report.to_json()))
    assert doc["verdict"] == "accused" and doc["suspects"][0]["partner"] == "partner-01"
    assert "partner-01" in report.to_text() and "false-accusation bound" in report.to_text()


def test_releases_without_fingerprints_are_evidence_but_accuse_nobody() -> None:
    w = world()
    bare = [Release(r.partner, r.object_key, {}, r.view) for r in w.releases[:40]]
    report = w.fp.trace(Artifact.from_objects([w.objects[0], w.objects[1]]), bare)
    assert report.verdict == "no-accusation" and report.positions_read == 0
    assert len(report.evidence) == 2
