"""The batched group operations refuse invalid elements by index, whichever thread checks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from detente.deconflict import ProtocolError, _group

BAD = b"\xff" * 32  # not a canonical ristretto255 encoding


@pytest.fixture
def two_threads() -> Iterator[None]:
    _group.set_threads(2)  # batches of >= 256 are then split over chunks
    try:
        yield
    finally:
        _group.set_threads(None)


def _valid(n: int) -> list[bytes]:
    return _group.split(_group.hash_to_group([b"item %d" % i for i in range(n)]))


def test_check_elements_accepts_valid_elements(two_threads: None) -> None:
    _group.check_elements(b"".join(_valid(600)))
    _group.check_elements(b"")


@pytest.mark.parametrize("positions", [[0], [599], [450], [450, 131], [300, 299, 598]])
def test_check_elements_names_the_first_invalid_element(
    two_threads: None, positions: list[int]
) -> None:
    elements = _valid(600)
    for p in positions:
        elements[p] = BAD
    with pytest.raises(ProtocolError, match=f"element {min(positions)} is not a valid"):
        _group.check_elements(b"".join(elements))


def test_check_elements_refuses_a_partial_element() -> None:
    with pytest.raises(ProtocolError, match="not a multiple of 32"):
        _group.check_elements(b"".join(_valid(3)) + b"\x00")
