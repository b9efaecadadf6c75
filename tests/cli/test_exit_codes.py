"""Every command's exit codes: 0 ok, 1 failure or rejections, 2 usage — never a traceback.

The table covers every leaf command of the tree (a test fails when a command is added
without rows here).  Successes that need a partner's running node (sync, push, deconflict
queries, key rotation accepted by a partner) or a whole scenario (demo, serve) are tested
where those run; here they show their failure and usage codes.
"""

from __future__ import annotations

import base64
import io
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from nacl.signing import SigningKey
from tests.cli.helpers import run
from tests.store.helpers import indicator

from detente.cli.app import full_command
from detente.node import Node
from detente.stix.validate import validate
from detente.stix.vocab import TLP_2_0_IDS
from detente.store import Provenance


@dataclass
class World:
    home: Path
    obj: str  # a stored indicator, released to fr
    files: Path


def _key() -> str:
    return base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    node = Node.init(tmp_path / "us", "us", communities="c")
    node.partners.add("fr", url="http://127.0.0.1:9", public_key=_key(),
                      communities=frozenset({"c"}), tier=2)
    obj = indicator(object_marking_refs=[TLP_2_0_IDS["green"]])
    node.store.put_many([validate(obj)], Provenance())
    node.releaser.catch_up("fr")
    node.partners.add_client("reader", "fr")
    from detente.web.operators import OperatorBook

    OperatorBook(node.store.engine).add("olga", "correct horse battery staple")
    node.close()
    files = tmp_path / "files"
    files.mkdir()
    (files / "good.json").write_bytes(orjson.dumps(indicator()))
    bad = indicator()
    bad["pattern"] = "[ipv4-addr:value = '1.2.3.4'"
    (files / "bad.json").write_bytes(orjson.dumps(bad))
    (files / "empty.json").write_bytes(b"")
    (files / "ops.json").write_bytes(orjson.dumps([{
        "name": "op", "latitude": 48.85, "longitude": 2.35, "radius_m": 500,
        "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}]))
    (files / "leak.txt").write_text("nothing of ours\n")
    yield World(tmp_path / "us", obj["id"], files)


GONE = "indicator--00000000-0000-4000-8000-000000000000"

#: (command, arguments after it; {obj} {files} are filled in, expected exit code)
CASES: list[tuple[str, str, int]] = [
    ("init", "--name fr2 --home {tmp}/fr2", 0),
    ("init", "--name us", 2),  # the home exists
    ("init", "--name 'not a name' --home {tmp}/x", 2),
    ("init", "--name y --home {tmp}/y --default-marking pink", 2),
    ("init", "--name y --home {tmp}/y --url ftp://host", 2),
    ("init", "--name z --home {tmp}/z --store postgresql://nobody@127.0.0.1:1/none", 1),
    ("identity", "", 0),
    ("identity", "--json --bogus", 2),
    ("ingest", "{files}/good.json", 0),
    ("ingest", "{files}/bad.json", 1),
    ("ingest", "{files}/empty.json", 1),
    ("ingest", "{files}/nope.json", 2),
    ("show", "{obj}", 0),
    ("show", GONE, 1),
    ("show", "{obj} --version bogus", 2),
    ("list", "", 0),
    ("list", "--since yesterday", 2),
    ("list", "--limit 0", 2),
    ("export", "", 0),
    ("export", "--format bogus", 2),
    ("release", "", 0),
    ("release", "--partner nobody", 1),
    ("release", "--partner", 2),
    ("serve", "--port {busy}", 1),
    ("serve", "--port notaport", 2),
    ("sync", "--bogus", 2),
    ("push", "fr --timeout 1", 1),
    ("push", "fr --since yesterday", 2),
    ("grade", GONE, 1),
    ("grade", "", 2),
    ("trace", "{files}/leak.txt", 0),
    ("trace", "{files}/leak.txt --format bogus", 2),
    ("trace", "{files}/nope.txt", 2),
    ("demo", "--bogus", 2),
    ("partner add", "ru --url http://127.0.0.1:9 --key {key}", 0),
    ("partner add", "fr --url http://127.0.0.1:9 --key {key}", 1),  # exists
    ("partner add", "ru --url http://127.0.0.1:9 --key {key} --tier 9", 2),
    ("partner add", "ru --url ftp://127.0.0.1:9 --key {key}", 2),
    ("partner add", "ru --url http://127.0.0.1:9 --key abc", 2),
    ("partner list", "", 0),
    ("partner list", "--bogus", 2),
    ("partner show", "fr", 0),
    ("partner show", "nobody", 1),
    ("partner show", "", 2),
    ("partner cap", "fr --why test --max-tier 1", 0),
    ("partner cap", "fr --why test", 2),
    ("partner cap", "nobody --why test --max-tier 1", 1),
    ("partner floor", "fr --why test --min-tier 1", 0),
    ("partner floor", "fr --why test", 2),
    ("partner remove", "fr", 0),
    ("partner remove", "nobody", 1),
    ("partner remove", "", 2),
    ("partner set-tier", "fr 3", 0),
    ("partner set-tier", "fr 7", 2),
    ("partner set-tier", "nobody 1", 1),
    ("partner rotate-key", "fr --statement {files}/leak.txt", 1),
    ("partner rotate-key", "fr --statement {files}/nope.json", 2),
    ("partner set-url", "fr http://127.0.0.1:10", 0),
    ("partner set-url", "fr ftp://x", 2),
    ("client add", "r2 --as-partner fr", 0),
    ("client add", "r2", 2),
    ("client list", "", 0),
    ("client list", "--bogus", 2),
    ("client remove", "reader", 0),
    ("client remove", "nobody", 1),
    ("client remove", "", 2),
    ("policy explain", "{obj} --partner fr", 0),
    ("policy explain", "{obj} --partner nobody", 1),
    ("policy explain", "{obj}", 2),
    ("policy matrix", "{obj}", 0),
    ("policy matrix", GONE, 1),
    ("policy matrix", "", 2),
    ("policy default-marking", "green", 0),
    ("policy default-marking", "pink", 2),
    ("key rotate", "", 0),
    ("key rotate", "--bogus", 2),
    ("log status", "", 0),
    ("log status", "--bogus", 2),
    ("log show", "--kind release", 0),
    ("log show", "--kind bogus", 2),
    ("log refused", "", 0),
    ("log refused", "--limit 0", 2),
    ("log prove", "--object {obj} --partner fr", 0),
    ("log prove", "--object {obj} --partner nobody", 1),
    ("log prove", "--object {obj}", 2),
    ("log evidence", "1", 1),
    ("log evidence", "one", 2),
    ("log check-evidence", "{files}/leak.txt --key abc", 1),
    ("log check-evidence", "{files}/leak.txt", 2),
    ("log verify", "", 1),  # fr's node is not running
    ("log verify", "--bogus", 2),
    ("evidence confirm", "{obj} --why ours", 0),
    ("evidence confirm", GONE + " --why ours", 1),
    ("evidence confirm", "{obj}", 2),
    ("evidence refute", "{obj} --why ours", 0),
    ("evidence refute", GONE + " --why ours", 1),
    ("evidence refute", "{obj}", 2),
    # adopting a partner's opinion succeeds in tests/federation/exchange/test_opinions.py
    ("evidence adopt", "opinion--00000000-0000-4000-8000-000000000000", 1),
    ("evidence adopt", "{obj}", 1),  # not an opinion
    ("evidence adopt", "", 2),
    ("review list", "", 0),
    ("review list", "--bogus", 2),
    ("review close", "99 --why x", 1),
    ("review close", "x --why x", 2),
    ("deconflict query", "fr --items {files}/ops.json --mode bogus", 2),
    ("deconflict query", "fr --items {files}/good.json", 1),  # fr is not running
    ("deconflict coalition", "--with fr --observables {files}/good.json", 1),  # fr is down
    ("deconflict coalition", "--with fr --threshold 3 --observables {files}/good.json", 1),
    ("deconflict coalition", "--with fr --observables {files}/good.json "
     "--names {files}/good.json", 2),
    ("deconflict coalition", "--with fr --threshold 1 --observables {files}/good.json", 2),
    ("deconflict coalition", "--with fr --reconstructor fr --observables {files}/good.json", 2),
    ("deconflict coalition", "--with fr --reconstructor nobody --observables "
     "{files}/good.json", 1),  # not a partner
    ("deconflict load-operations", "{files}/ops.json", 0),
    ("deconflict load-operations", "{files}/leak.txt", 1),
    ("deconflict load-operations", "", 2),
    ("deconflict budget", "fr", 0),
    ("deconflict budget", "nobody", 1),
    ("deconflict budget", "fr --items many", 2),
    ("deconflict budget", "fr --ratio -1", 2),
    ("operator add", "anna --password-stdin", 0),
    ("operator add", "olga --password-stdin", 1),  # exists
    ("operator add", "", 2),
    ("operator list", "", 0),
    ("operator list", "--bogus", 2),
    ("operator remove", "olga", 0),
    ("operator remove", "nobody", 1),
    ("operator remove", "", 2),
    ("search", "198.51.100.1", 0),
    ("search", "nothing-matches-this.example", 0),
    ("search", "x --limit 0", 2),
    ("evidence sighting", "{obj} --count 2", 0),
    ("evidence sighting", GONE, 1),
    ("evidence sighting", "{obj} --count many", 2),
    ("claim", "{obj}", 0),
    ("claim", GONE, 1),
    ("claim", "bogus words", 2),
    ("credit", "", 0),
    ("credit", "--partner nobody", 1),
    ("credit", "--bogus", 2),
    ("rfi ask", "question --to fr", 0),
    ("rfi ask", "question --to nobody", 1),
    ("rfi ask", "question --to fr --deadline soonish", 2),
    ("rfi ask", "question --private --observable domain-name:x.example --to nobody", 1),
    ("rfi ask", "question --private --to fr", 2),
    ("rfi list", "", 0),
    ("rfi list", "--bogus", 2),
    ("rfi show", "note--00000000-0000-4000-8000-000000000000", 1),
    ("rfi show", "", 2),
    ("rfi answer", "note--00000000-0000-4000-8000-000000000000 --text x", 1),
    ("rfi answer", "", 2),
    ("rfi close", "note--00000000-0000-4000-8000-000000000000", 1),
    ("rfi close", "", 2),
    ("feed add", "osint --url http://127.0.0.1:9/taxii2/", 0),
    ("feed add", "osint --url ftp://127.0.0.1:9/", 2),
    ("feed list", "", 0),
    ("feed list", "--bogus", 2),
    ("feed pull", "nobody", 1),
    ("feed pull", "--bogus", 2),
    ("feed remove", "nobody", 1),
    ("feed remove", "", 2),
]


#: commands whose runs need partners' nodes or a whole scenario, and where they are run
RUN_ELSEWHERE = {"sync": "tests/federation/exchange/test_kill_resume.py",
                 "demo": "tests/scenario/test_story.py"}


def _leaves(command: object, path: list[str]) -> Iterator[str]:
    sub = getattr(command, "commands", None)
    if sub:
        for name, child in sub.items():
            yield from _leaves(child, [*path, name])
    else:
        yield " ".join(path)


def test_the_table_covers_every_command_with_each_outcome_it_can_give() -> None:
    leaves = set(_leaves(full_command(), []))
    covered = {c for c, _, _ in CASES}
    assert leaves == covered, f"missing: {sorted(leaves - covered)}"
    codes = {leaf: {code for c, _, code in CASES if c == leaf} for leaf in leaves}
    assert not [leaf for leaf in sorted(leaves) if 2 not in codes[leaf]], "no usage case"
    assert not [leaf for leaf in sorted(leaves - set(RUN_ELSEWHERE))
                if not codes[leaf] & {0, 1}], "no run case"


@pytest.mark.parametrize(("command", "args", "code"), CASES,
                         ids=[f"{c} {a} -> {code}" for c, a, code in CASES])
def test_exit_code(command: str, args: str, code: int, world: World, tmp_path: Path,
                   capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
                   ) -> None:
    import shlex

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        filled = args.format(obj=world.obj, files=world.files, tmp=tmp_path, key=_key(),
                             busy=busy.getsockname()[1])
        monkeypatch.setenv("DETENTE_HOME", str(world.home))
        monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse battery staple\n"))
        r = run(capsys, *command.split(), *shlex.split(filled))
    finally:
        busy.close()
    assert "Traceback" not in r.err
    assert r.code == code, f"{command} {filled}: {r.code}\n{r.out}\n{r.err}"
    if code:
        assert (r.err + r.out).strip(), "a failure says why"
    if code == 2:
        assert r.err.strip(), "a usage error says why on stderr"
