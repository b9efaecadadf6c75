"""Length-checked reading and writing of the binary PSI message format.

Why hand-written: the messages are a few fixed fields and long blobs of 32-byte group
elements; a schema library would copy the blobs and still need these bounds checks. Every
read says what it was reading, so a truncated message fails with a named field.
"""

from __future__ import annotations

import struct

from detente.deconflict.errors import ProtocolError

__all__ = ["Reader", "Writer"]

_U8 = struct.Struct(">B")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class Writer:
    """Appends big-endian fields to a buffer."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def u8(self, value: int) -> Writer:
        self._parts.append(_U8.pack(value))
        return self

    def u32(self, value: int) -> Writer:
        self._parts.append(_U32.pack(value))
        return self

    def raw(self, data: bytes) -> Writer:
        self._parts.append(data)
        return self

    def blob(self, data: bytes) -> Writer:
        """A u64 length then the bytes."""
        self._parts.append(_U64.pack(len(data)))
        self._parts.append(data)
        return self

    def getvalue(self) -> bytes:
        return b"".join(self._parts)


class Reader:
    """Reads fields from a message; every shortfall is a :class:`ProtocolError`."""

    def __init__(self, data: bytes, what: str) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._what = what

    def _take(self, n: int, field: str) -> memoryview:
        left = len(self._data) - self._pos
        if n > left:
            raise ProtocolError(
                f"truncated {self._what}: field {field!r} needs {n} bytes at offset "
                f"{self._pos}, {left} left"
            )
        chunk = self._data[self._pos : self._pos + n]
        self._pos += n
        return chunk

    def u8(self, field: str) -> int:
        value: int = _U8.unpack(self._take(1, field))[0]
        return value

    def u32(self, field: str) -> int:
        value: int = _U32.unpack(self._take(4, field))[0]
        return value

    def raw(self, n: int, field: str) -> bytes:
        return bytes(self._take(n, field))

    def blob(self, field: str) -> bytes:
        n: int = _U64.unpack(self._take(8, field))[0]
        return bytes(self._take(n, field))

    def end(self) -> None:
        left = len(self._data) - self._pos
        if left:
            raise ProtocolError(f"{self._what} has {left} unexpected trailing bytes")
