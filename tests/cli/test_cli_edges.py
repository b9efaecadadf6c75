"""The CLI's rough edges, filed down (issue 16): whole ids, usage errors, a busy port,
init's URL and failures, the default marking, --json everywhere it was missing."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from nacl.signing import SigningKey
from tests.cli.helpers import run
from tests.store.helpers import indicator

from detente.cli.app import full_command
from detente.node import Node
from detente.settings import load_settings
from detente.stix.validate import validate
from detente.stix.vocab import TLP_2_0_IDS
from detente.store import Provenance

ENTRY = "from detente.cli import main; main()"


def _key() -> str:
    return base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()


def _home_with(tmp_path: Path, objects: list[dict[str, object]], **init: str) -> Path:
    node = Node.init(tmp_path / "us", "us", communities="c", **init)
    node.store.put_many([validate(o) for o in objects], Provenance())
    node.close()
    return tmp_path / "us"


# -- list -> show ------------------------------------------------------------------------
def test_list_prints_whole_ids_when_piped_and_show_takes_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    objs = [indicator(name=f"a rather long indicator name number {i} " * 3) for i in range(5)]
    objs.append({"type": "x-mitre-tactic", "spec_version": "2.1",
                 "id": "x-mitre-tactic--3ba9a0a5-2bc6-4a0c-8e0d-7b4a7e0bbd42",
                 "created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z",
                 "name": "Collection"})
    home = _home_with(tmp_path, objs)
    # through a real pipe, as `detente list | ...` in a shell
    done = subprocess.run([sys.executable, "-c", ENTRY, "list", "--home", str(home)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "60"})
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout
    ids = [line.split("\t")[1] for line in done.stdout.splitlines()]
    assert {o["id"] for o in objs} <= set(ids)
    for oid in ids:
        r = run(capsys, "show", oid, "--home", str(home))
        assert r.code == 0 and orjson.loads(r.out)["id"] == oid


def test_list_on_a_narrow_terminal_still_shows_whole_ids(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    cli_app = sys.modules["detente.cli.app"]
    home = _home_with(tmp_path, [indicator() for _ in range(3)])
    for width in (60, 200):
        monkeypatch.setattr(cli_app.console, "_force_terminal", True)
        monkeypatch.setattr(cli_app.console, "_width", width)
        r = run(capsys, "list", "--home", str(home), "--type", "indicator")
        assert r.code == 0
        found = [w for w in r.out.replace("│", " ").split() if w.startswith("indicator--")]
        assert len(found) == 3 and all(len(f) == len("indicator--") + 36 for f in found)


# -- usage errors ------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "named"), [
    (["deconflict", "fr", "--mode", "bogus", "--observables"], "--mode"),
    (["export", "--format", "bogus"], "--format"),
    (["trace", "-", "--format", "bogus"], "--format"),
    (["log", "show", "--kind", "bogus"], "--kind"),
    (["list", "--since", "yesterday"], "--since"),
    (["show", "x", "--version", "bogus"], "--version"),
    (["policy", "default-marking", "pink"], "level"),
    (["init", "--name", "x", "--default-marking", "pink"], "--default-marking"),
])
def test_a_value_outside_an_options_set_is_a_usage_error(
        args: list[str], named: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    r = run(capsys, *args, "--home", str(tmp_path / "nowhere"))
    assert r.code == 2
    assert named in r.err and "Traceback" not in r.err
    assert "bogus" in r.err or "pink" in r.err or "yesterday" in r.err


def test_help_never_prints_python_types(capsys: pytest.CaptureFixture[str]) -> None:
    def leaves(command: object, path: list[str]) -> list[list[str]]:
        sub = getattr(command, "commands", None)
        if not sub:
            return [path]
        return [p for name, c in sub.items() for p in leaves(c, [*path, name])]

    for path in [[], *leaves(full_command(), [])]:
        r = run(capsys, *path, "--help")
        assert r.code == 0
        for python_type in ("<list[", "<bool>", "<str>", "<path>", "<int", "<float"):
            assert python_type not in r.out, f"detente {' '.join(path)} --help: {python_type}"


# -- serve on a busy port ----------------------------------------------------------------
def test_serve_on_a_busy_port_names_it_and_prints_nothing_else(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = _home_with(tmp_path, [])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run(capsys, "serve", "--home", str(home), "--port", str(port))
    assert r.code == 1
    assert f"port {port}" in r.err and "in use" in r.err
    assert "serving" not in r.out + r.err and "Traceback" not in r.err
    assert "Errno" not in r.err  # not uvicorn's raw error


# -- init ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("url", "host", "port"), [
    ("http://127.0.0.1:8101", "127.0.0.1", 8101),
    ("http://[::1]:8443/", "::1", 8443),
    ("https://cti.example.org:9443", "127.0.0.1", 9443),  # a name: bind stays local
    ("https://cti.example.org", "127.0.0.1", 8000),  # no port: the default
])
def test_init_url_sets_the_port_and_an_ip_host(
        url: str, host: str, port: int, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    r = run(capsys, "init", "--home", str(tmp_path / "n"), "--name", "n", "--url", url,
            "--json")
    assert r.code == 0, r.err
    settings = load_settings(tmp_path / "n")
    assert (settings["url"], settings["host"], settings["port"]) == (url, host, port)
    doc = orjson.loads(r.out)
    assert (doc["host"], doc["port"], doc["url"]) == (host, port, url)
    assert doc["public_key"] and doc["identity"].startswith("identity--")


def test_a_failed_init_leaves_no_home(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    r = run(capsys, "init", "--home", str(tmp_path / "a"), "--name", "a", "--store",
            "postgresql://nobody@127.0.0.1:1/none")
    assert r.code == 1 and "cannot reach the store" in r.err and "127.0.0.1:1" in r.err
    assert not (tmp_path / "a").exists()
    # an existing directory keeps what it held, and only that
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    r = run(capsys, "init", "--home", str(tmp_path / "b"), "--name", "b", "--store",
            "postgresql://nobody@127.0.0.1:1/none")
    assert r.code == 1
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["notes.txt"]


def test_init_refuses_a_database_holding_another_nodes_store(
        pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = run(capsys, "init", "--home", str(tmp_path / "a"), "--name", "a", "--store", pg_url)
    assert r.code == 0, r.err
    a = Node.open(tmp_path / "a")
    secret = indicator(object_marking_refs=[TLP_2_0_IDS["red"]], name="a's secret")
    a.store.put_many([validate(secret)], Provenance())
    held = a.store.count()
    a.close()
    r = run(capsys, "init", "--home", str(tmp_path / "b"), "--name", "b", "--store", pg_url)
    assert r.code == 2 and "already holds a detente store" in r.err
    assert not (tmp_path / "b").exists()
    a = Node.open(tmp_path / "a")
    assert a.store.count() == held and a.store.get(secret["id"]) is not None
    a.close()


def test_a_home_never_reads_another_nodes_store(
        pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = Node.init(tmp_path / "a", "a", store_url=pg_url)
    secret = indicator(name="a's secret")
    a.store.put_many([validate(secret)], Provenance())
    a.close()
    Node.init(tmp_path / "b", "b").close()
    toml = tmp_path / "b" / "detente.toml"
    toml.write_text(toml.read_text().replace('store = ""', f'store = "{pg_url}"'))
    for args in (["list"], ["show", secret["id"]], ["export"]):
        r = run(capsys, *args, "--home", str(tmp_path / "b"))
        assert r.code == 2, r.out
        assert "belongs to another node" in r.err
        assert secret["id"] not in r.out and "a's secret" not in r.out
    # its own node still opens it
    assert run(capsys, "show", secret["id"], "--home", str(tmp_path / "a")).code == 0


def test_a_store_made_before_claims_is_claimed_by_its_own_node_only(tmp_path: Path) -> None:
    node = Node.init(tmp_path / "a", "a")
    engine = node.store.engine
    node.close()
    from detente.store.engine import writer

    with writer(engine).begin() as conn:  # as a store made by an earlier detente
        conn.execute(sa.text("DELETE FROM store_meta WHERE key = 'node'"))
    engine.dispose()
    node = Node.open(tmp_path / "a")
    assert node.store.count() >= 1  # opens, and claims it
    owner = node._store.owner() if node._store is not None else None
    assert owner == node.identity_id
    node.close()


# -- ingest ------------------------------------------------------------------------------
@pytest.mark.parametrize("content", [b"", b"[]", b'{"type": "bundle", "id": '
                                     b'"bundle--6f7f98d7-c880-40f2-8b52-84f55b6b1baf", '
                                     b'"objects": []}'])
def test_an_empty_input_is_a_failure_that_says_so(
        content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = _home_with(tmp_path, [])
    src = tmp_path / "in.json"
    src.write_bytes(content)
    r = run(capsys, "ingest", str(src), "--home", str(home))
    assert r.code == 1 and "no objects in" in r.err and str(src) in r.err


# -- the default marking -----------------------------------------------------------------
def test_default_marking_is_named_as_the_fix_then_set_and_re_evaluated(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    unmarked = [indicator(name=f"unmarked {i}") for i in range(6)]
    home = _home_with(tmp_path, unmarked)
    h = ["--home", str(home)]
    r = run(capsys, "partner", "add", "fr", "--url", "http://127.0.0.1:9", "--key", _key(),
            "--community", "c", "--tier", "2", *h)
    assert r.code == 0
    assert "no TLP marking" in r.out and "detente policy default-marking" in r.out
    r = run(capsys, "release", *h, "--json")
    assert orjson.loads(r.out)["partners"]["fr"]["released"] == 0
    oid = unmarked[0]["id"]
    r = run(capsys, "policy", "explain", oid, "--partner", "fr", *h)
    assert "deny" in r.out and "fix:" in r.out and "detente policy default-marking" in r.out
    doc = orjson.loads(run(capsys, "policy", "explain", oid, "--partner", "fr", *h,
                           "--json").out)
    assert doc["verdict"] == "deny" and "default-marking" in doc["fix"]

    r = run(capsys, "policy", "default-marking", "GREEN", *h, "--json")
    assert r.code == 0, r.err
    doc = orjson.loads(r.out)
    # the six, and the node's own identity object (unmarked too)
    assert doc["default_marking"] == "green" and doc["partners"]["fr"]["released"] == 7
    assert load_settings(home)["default_marking"] == "green"
    doc = orjson.loads(run(capsys, "policy", "explain", oid, "--partner", "fr", *h,
                           "--json").out)
    assert doc["verdict"].startswith("allow") and doc["fix"] is None
    log = orjson.loads(run(capsys, "log", "show", "--kind", "policy-change", *h, "--json").out)
    assert any("default marking none -> green" in (e.get("detail") or "") for e in log)

    # and back: the views released under it are withdrawn
    doc = orjson.loads(run(capsys, "policy", "default-marking", "none", *h, "--json").out)
    assert doc["partners"]["fr"]["withdrawn"] == 7 and doc["default_marking"] is None


def test_default_marking_refuses_when_the_environment_overrides_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    home = _home_with(tmp_path, [])
    monkeypatch.setenv("DETENTE_DEFAULT_MARKING", "clear")
    r = run(capsys, "policy", "default-marking", "green", "--home", str(home))
    assert r.code == 2 and "DETENTE_DEFAULT_MARKING" in r.err


def test_init_default_marking(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = run(capsys, "init", "--home", str(tmp_path / "n"), "--name", "n",
            "--default-marking", "clear", "--json")
    assert r.code == 0 and orjson.loads(r.out)["default_marking"] == "clear"
    assert load_settings(tmp_path / "n")["default_marking"] == "clear"
    r = run(capsys, "init", "--home", str(tmp_path / "m"), "--name", "m")
    assert "default-marking" in r.out  # says how to set one


# -- --json --------------------------------------------------------------------------------
def test_json_on_lists_evidence_and_partner_changes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    obj = indicator(object_marking_refs=[TLP_2_0_IDS["green"]])
    home = _home_with(tmp_path, [obj])
    h = ["--home", str(home)]
    assert run(capsys, "partner", "add", "fr", "--url", "http://127.0.0.1:9", "--key", _key(),
               "--community", "c", "--tier", "2", *h).code == 0
    run(capsys, "release", *h)
    run(capsys, "client", "add", "reader", "--as-partner", "fr", *h)
    monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse battery staple\n"))
    run(capsys, "operator", "add", "olga", "--password-stdin", *h)

    [client] = orjson.loads(run(capsys, "client", "list", *h, "--json").out)
    assert client["name"] == "reader" and client["partner"] == "fr"
    assert "password" not in client and "secret_hash" not in client
    [op] = orjson.loads(run(capsys, "operator", "list", *h, "--json").out)
    assert op["name"] == "olga" and set(op) == {"name", "created"}
    assert orjson.loads(run(capsys, "review", "list", *h, "--json").out) == []
    doc = orjson.loads(run(capsys, "evidence", "confirm", obj["id"], "--why", "seen", *h,
                           "--json").out)
    assert doc["object"] == obj["id"] and doc["verdict"] == "confirmed"
    doc = orjson.loads(run(capsys, "partner", "cap", "fr", "--why", "test", "--max-tier",
                           "0", *h, "--json").out)
    assert doc["partner"] == "fr" and doc["tier"] == 0
    assert {"released", "withdrawn", "replaced", "withheld"} <= set(doc)
    doc = orjson.loads(run(capsys, "partner", "set-tier", "fr", "3", *h, "--json").out)
    assert doc["operator_tier"] == 3 and {"released", "withdrawn"} <= set(doc)
