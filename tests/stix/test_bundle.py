"""iter_objects over every input form; make_bundle for export."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson

from detente.stix import DecodeFailure, Position, iter_objects, make_bundle, validate
from detente.stix.model import StixObject

U = "0c7b5b88-8ff7-4a4d-aa9d-feb398cd00{:02d}"


def ip(n: int) -> dict[str, Any]:
    return {"type": "ipv4-addr", "id": "ipv4-addr--" + U.format(n), "value": f"198.51.100.{n}"}


def items(source: Any) -> list[tuple[int, int | None, Any]]:
    out = []
    for position, item in iter_objects(source):
        assert isinstance(position, Position)
        out.append((int(position), position.line, item))
    return out


def test_a_bundle_a_single_object_and_an_array() -> None:
    bundle = {"type": "bundle", "id": "bundle--" + U.format(99), "objects": [ip(1), ip(2)]}
    assert items(orjson.dumps(bundle, option=orjson.OPT_INDENT_2)) == [
        (1, None, ip(1)), (2, None, ip(2))]  # fmt: skip
    assert items(orjson.dumps(ip(3), option=orjson.OPT_INDENT_2)) == [(1, None, ip(3))]
    assert items(orjson.dumps([ip(4), ip(5)], option=orjson.OPT_INDENT_2)) == [
        (1, None, ip(4)), (2, None, ip(5))]  # fmt: skip
    untyped = {"id": "dcba33ae-a4d3-4940-850f-ece3873a4c36", "objects": [ip(6)]}
    assert items(orjson.dumps(untyped, option=orjson.OPT_INDENT_2)) == [(1, None, ip(6))]


def test_json_lines_with_a_broken_line_in_the_middle(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    bundle = {"type": "bundle", "id": "bundle--" + U.format(98), "objects": [ip(3), ip(4)]}
    lines = [orjson.dumps(ip(1)), orjson.dumps(ip(2)), b'{"type": "ipv4-addr", "id": ',
             b"", orjson.dumps(bundle), orjson.dumps(ip(5))]  # fmt: skip
    path.write_bytes(b"\n".join(lines) + b"\n")
    got = items(path)
    assert [(index, line) for index, line, _ in got] == [
        (1, 1), (2, 2), (3, 3), (4, 5), (5, 5), (6, 6)]  # fmt: skip
    failure = got[2][2]
    assert isinstance(failure, DecodeFailure) and failure.line == 3
    assert "not valid JSON" in failure.message
    assert [item for _, _, item in got if not isinstance(item, DecodeFailure)] == [
        ip(1), ip(2), ip(3), ip(4), ip(5)]  # fmt: skip
    first = next(iter_objects(path))[0]
    assert isinstance(first, Position) and first.describe() == "object 1 (line 1)"


def test_json_lines_whose_first_line_is_broken() -> None:
    data = b"{broken\n" + orjson.dumps(ip(1)) + b"\n" + orjson.dumps(ip(2)) + b"\n"
    got = items(io.BytesIO(data))
    assert isinstance(got[0][2], DecodeFailure) and got[0][1] == 1
    assert got[1:] == [(2, 2, ip(1)), (3, 3, ip(2))]


def test_a_broken_whole_file_is_one_failure() -> None:
    data = orjson.dumps([ip(1), ip(2)], option=orjson.OPT_INDENT_2)[:-3]
    got = items(data)
    assert len(got) == 1 and isinstance(got[0][2], DecodeFailure)
    assert "input is not valid JSON" in got[0][2].message


def test_json_lines_are_streamed() -> None:
    class Endless(io.RawIOBase):
        """An endless JSON Lines stream: reading it whole would never return."""

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            line = orjson.dumps(ip(1)) + b"\n"
            buffer[: len(line)] = line
            return len(line)

    stream = iter_objects(io.BufferedReader(Endless()))
    assert [next(stream)[1] for _ in range(3)] == [ip(1)] * 3


def test_empty_input_has_no_items() -> None:
    assert items(b"") == [] and items(b"\n \n") == []


def test_make_bundle_round_trips() -> None:
    objects: list[StixObject | dict[str, Any]] = [validate(ip(1)), ip(2)]
    data = make_bundle(objects)
    bundle = orjson.loads(data)
    assert bundle["type"] == "bundle" and bundle["id"].startswith("bundle--")
    assert bundle["id"] != orjson.loads(make_bundle([]))["id"]
    assert [item for _, item in iter_objects(data)] == [ip(1), ip(2)]
    assert orjson.loads(make_bundle([]))["objects"] == []
