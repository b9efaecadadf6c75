"""The node commands as a user drives them: init, identity, ingest, show, list, export."""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

import orjson
import pytest
from tests.cli.helpers import run
from tests.realdata import REAL_DATA
from tests.store.helpers import indicator

REAL = REAL_DATA


@pytest.fixture
def home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    h = tmp_path / "us"
    r = run(capsys, "init", "--home", str(h), "--name", "us", "--community", "coalition")
    assert r.code == 0, r.err
    return h


def test_init_creates_a_home_and_refuses_to_overwrite(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = home / "node.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (home / "detente.toml").exists() and (home / "store.db").exists()
    r = run(capsys, "init", "--home", str(home), "--name", "us")
    assert r.code == 2
    assert "refusing to overwrite" in r.err
    assert "Traceback" not in r.err


def test_identity_json_never_prints_the_private_key(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run(capsys, "identity", "--home", str(home), "--json")
    assert r.code == 0
    info = orjson.loads(r.out)
    assert info["name"] == "us" and info["identity"].startswith("identity--")
    secret = (home / "node.key").read_text().strip()
    assert secret not in r.out and len(info["public_key"]) == 44


def test_home_from_environment(home: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETENTE_HOME", str(home))
    assert run(capsys, "identity").code == 0
    monkeypatch.delenv("DETENTE_HOME")
    r = run(capsys, "identity")
    assert r.code == 2 and "no node home" in r.err


def test_ingest_keeps_valid_objects_and_lists_rejections(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = [indicator() for _ in range(1000)]
    lines = [orjson.dumps(o) for o in good]
    bad = indicator()
    bad["pattern"] = "[ipv4-addr:value = '1.2.3.4'"  # unbalanced bracket
    lines.insert(500, orjson.dumps(bad))
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    r = run(capsys, "ingest", "--home", str(home), str(src), "--json")
    assert r.code == 1
    summary = orjson.loads(r.out)
    assert summary["stored"] == 1000 and summary["rejected"] == 1
    [rej] = summary["rejections"]
    assert rej["id"] == bad["id"] and "line 501" in rej["position"]
    assert "pattern" in rej["reason"]
    # duplicates on a second run, nothing stored twice
    r = run(capsys, "ingest", "--home", str(home), str(src), "--json")
    again = orjson.loads(r.out)
    assert again["stored"] == 0 and again["duplicates"] == 1000


def test_strict_ingest_is_all_or_nothing(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad = indicator(), indicator()
    bad["created"] = "2024-13-01T00:00:00Z"
    src = tmp_path / "b.json"
    src.write_bytes(orjson.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                                  "objects": [good, bad]}))
    r = run(capsys, "ingest", "--home", str(home), str(src), "--strict", "--json")
    assert r.code == 1
    assert orjson.loads(r.out)["rolled_back"] is True
    assert run(capsys, "show", "--home", str(home), good["id"]).code == 1


def test_broken_json_is_reported_not_raised(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "broken.json"
    src.write_text('{"type": "bundle", "objects": [')
    r = run(capsys, "ingest", "--home", str(home), str(src))
    assert r.code == 1
    assert "rejected 1" in r.out and "Traceback" not in r.err + r.out


def test_missing_input_is_a_usage_error(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = run(capsys, "ingest", "--home", str(home), "/nonexistent/file.json")
    assert r.code == 2 and "no such file" in r.err


def test_show_list_export_round_trip(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    oid = indicator()["id"]
    versions = [indicator(oid, modified=m, name=f"v{m}") for m in (1, 2)]
    src = tmp_path / "v.json"
    src.write_bytes(orjson.dumps(versions))
    assert run(capsys, "ingest", "--home", str(home), str(src)).code == 0
    assert orjson.loads(run(capsys, "show", "--home", str(home), oid).out)["name"] == "v2"
    r = run(capsys, "show", "--home", str(home), oid, "--version", versions[0]["modified"])
    assert orjson.loads(r.out)["name"] == "v1"
    r = run(capsys, "show", "--home", str(home), oid, "--all-versions")
    assert [o["name"] for o in orjson.loads(r.out)["versions"]] == ["v1", "v2"]
    r = run(capsys, "list", "--home", str(home), "--type", "indicator", "--json")
    assert [o["id"] for o in orjson.loads(r.out)["objects"]] == [oid]
    out = tmp_path / "export.json"
    assert run(capsys, "export", "--home", str(home), "--output", str(out)).code == 0
    bundle = orjson.loads(out.read_bytes())
    assert bundle["type"] == "bundle"
    assert {o["id"] for o in bundle["objects"]} >= {oid}
    r = run(capsys, "show", "--home", str(home), f"indicator--{uuid.uuid4()}")
    assert r.code == 1 and "no object" in r.err


def test_real_published_content_is_taken_or_clearly_refused(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run(capsys, "ingest", "--home", str(home), str(REAL), "--json")
    summary = orjson.loads(r.out)
    assert summary["stored"] > 300
    for rej in summary["rejections"]:
        assert rej["reason"] and rej["position"]
    assert "Traceback" not in r.err


TOTAL = 80_000


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_sigkill_during_ingest_leaves_whole_batches(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import signal
    import subprocess
    import sys
    import time

    from detente.node import Node

    src = tmp_path / "big.jsonl"
    with src.open("wb") as f:
        for _ in range(TOTAL):
            f.write(orjson.dumps(indicator()) + b"\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "detente.cli", "ingest", "--home", str(home), str(src)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    node = Node.open(home)
    deadline = time.monotonic() + 60
    while node.store.count() < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    from detente.federation.exchange.local import BATCH

    count = node.store.count() - 1  # the node's own identity
    assert count % BATCH == 0, f"{count} objects: a batch was torn"
    assert BATCH <= count < TOTAL, "the kill must land mid-ingest"
    # the store still works and a re-run completes the job
    node.close()
    r = run(capsys, "ingest", "--home", str(home), str(src), "--json")
    summary = orjson.loads(r.out)
    assert summary["stored"] + summary["duplicates"] == TOTAL
    assert summary["rejected"] == 0


@pytest.mark.parametrize("args", [(), ("log",), ("show",), ("nonsense",), ("partner", "add"),
                                  ("ingest", "--strict")])
def test_usage_mistakes_exit_2_without_traceback(
    args: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    r = run(capsys, *args)
    assert r.code == 2
    assert "Traceback" not in r.out + r.err
    assert "Usage" in r.out + r.err
