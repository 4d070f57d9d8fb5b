"""A minimal, strict reader of Cap'n Proto messages (standard unpacked stream framing), for concrete's
serialized values and keysets.

concrete 2.11 writes its objects with ``capnp::writeMessage`` (unpacked, segment table first) using the
schema ``concrete-protocol.capnp`` of the concrete repository (tools/concrete-protocol/src). Only what
reading a ``Value`` and a ``Keyset`` needs is implemented: struct and list pointers, single and double far
pointers, byte/u32/composite lists. Every pointer is bounds-checked; anything unexpected raises
:class:`CapnpLayoutError` rather than returning garbage.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from crypto.errors import EncodingError

__all__ = ["CapnpLayoutError", "Message", "StructReader"]

_WORD = 8
_ELEMENT_BYTES = {0: 0, 2: 1, 3: 2, 4: 4, 5: 8}  # element size code -> bytes (1 = bit, 6 = pointer, 7 = composite)


class CapnpLayoutError(EncodingError):
    """Bytes are not the Cap'n Proto layout expected of a concrete object (truncated, bad pointer, wrong type)."""


class Message:
    """The segments of one message; ``root()`` is the root struct."""

    def __init__(self, data: bytes, *, name: str = "message"):
        self.name = name
        view = memoryview(data if isinstance(data, bytes) else bytes(data))
        if len(view) < 8:
            raise CapnpLayoutError(f"{name}: {len(view)} bytes, too short for a Cap'n Proto segment table")
        count = struct.unpack_from("<I", view, 0)[0] + 1
        if count > 1 << 16:
            raise CapnpLayoutError(f"{name}: {count} segments claimed: not a Cap'n Proto message")
        table = 4 + 4 * count
        table += (-table) % _WORD
        if len(view) < table:
            raise CapnpLayoutError(f"{name}: truncated segment table ({len(view)} bytes)")
        sizes = struct.unpack_from(f"<{count}I", view, 4)
        offset = table
        self.segments: list[memoryview] = []
        for size in sizes:
            end = offset + size * _WORD
            if end > len(view):
                raise CapnpLayoutError(f"{name}: truncated: segment table needs {end} bytes, have {len(view)}")
            self.segments.append(view[offset:end])
            offset = end
        if offset != len(view):
            raise CapnpLayoutError(f"{name}: {len(view) - offset} trailing bytes after the last segment")

    def word(self, segment: int, index: int) -> int:
        if not 0 <= segment < len(self.segments) or not 0 <= index < len(self.segments[segment]) // _WORD:
            raise CapnpLayoutError(f"{self.name}: pointer to word {index} of segment {segment} is out of bounds")
        return struct.unpack_from("<Q", self.segments[segment], index * _WORD)[0]

    def root(self) -> "StructReader":
        return self.follow(0, 0, expect="struct")

    def follow(self, segment: int, index: int, *, expect: str):
        """Resolve the pointer stored at word ``index`` of ``segment`` (None for a null pointer)."""
        pointer = self.word(segment, index)
        if pointer == 0:
            return None
        content_segment, content_index = segment, None
        kind = pointer & 3
        if kind == 2:  # far pointer: a landing pad in another segment
            double = (pointer >> 2) & 1
            pad_index = (pointer >> 3) & ((1 << 29) - 1)
            pad_segment = pointer >> 32
            if not double:
                if self.word(pad_segment, pad_index) & 3 == 2:  # the spec forbids a far pad pointing on: no loops
                    raise CapnpLayoutError(f"{self.name}: far pointer lands on another far pointer")
                return self.follow(pad_segment, pad_index, expect=expect)
            far = self.word(pad_segment, pad_index)
            tag = self.word(pad_segment, pad_index + 1)
            if far & 7 != 2:
                raise CapnpLayoutError(f"{self.name}: double-far landing pad is not a far pointer")
            content_segment, content_index = far >> 32, (far >> 3) & ((1 << 29) - 1)
            pointer = tag
            kind = pointer & 3
        if content_index is None:
            offset = _signed30(pointer >> 2)
            content_index = index + 1 + offset
        if kind == 0:
            if expect != "struct":
                raise CapnpLayoutError(f"{self.name}: found a struct pointer where a {expect} was expected")
            data_words = (pointer >> 32) & 0xFFFF
            pointer_words = pointer >> 48
            self._check_range(content_segment, content_index, data_words + pointer_words)
            return StructReader(self, content_segment, content_index, data_words, pointer_words)
        if kind == 1:
            if expect != "list":
                raise CapnpLayoutError(f"{self.name}: found a list pointer where a {expect} was expected")
            return _ListRef(content_segment, content_index, (pointer >> 32) & 7, pointer >> 35)
        raise CapnpLayoutError(f"{self.name}: unsupported pointer kind {kind} (capability) where a {expect} was expected")

    def _check_range(self, segment: int, index: int, words: int) -> None:
        if not 0 <= segment < len(self.segments) or index < 0 or (index + words) * _WORD > len(self.segments[segment]):
            raise CapnpLayoutError(f"{self.name}: object of {words} words at word {index} of segment {segment} "
                                   "is out of bounds")


def _signed30(value: int) -> int:
    value &= (1 << 30) - 1
    return value - (1 << 30) if value >> 29 else value


@dataclass(frozen=True)
class _ListRef:
    segment: int
    index: int
    size_code: int
    count: int


class StructReader:
    """One struct: typed accessors for its data section and pointer section (absent fields read as 0)."""

    def __init__(self, message: Message, segment: int, index: int, data_words: int, pointer_words: int):
        self.message, self.segment, self.index = message, segment, index
        self.data_words, self.pointer_words = data_words, pointer_words

    def _data(self, byte_offset: int, size: int, fmt: str):
        if byte_offset + size > self.data_words * _WORD:
            return 0  # a field beyond the data section was written by an older schema: its default
        return struct.unpack_from(fmt, self.message.segments[self.segment], self.index * _WORD + byte_offset)[0]

    def uint16(self, index: int) -> int:
        return self._data(index * 2, 2, "<H")

    def uint32(self, index: int) -> int:
        return self._data(index * 4, 4, "<I")

    def float64(self, index: int) -> float:
        return float(self._data(index * 8, 8, "<d"))

    def bool(self, bit: int) -> bool:
        return bool((self._data(bit // 8, 1, "<B") >> (bit % 8)) & 1)

    def _pointer(self, slot: int, expect: str):
        if slot >= self.pointer_words:
            return None
        return self.message.follow(self.segment, self.index + self.data_words + slot, expect=expect)

    def struct(self, slot: int, *, field: str) -> "StructReader":
        found = self._pointer(slot, "struct")
        if found is None:
            raise CapnpLayoutError(f"{self.message.name}: field {field} is missing (null pointer)")
        return found

    def list_ref(self, slot: int, *, field: str) -> _ListRef:
        found = self._pointer(slot, "list")
        if found is None:
            raise CapnpLayoutError(f"{self.message.name}: field {field} is missing (null pointer)")
        return found

    def uint32_list(self, slot: int, *, field: str) -> list[int]:
        ref = self.list_ref(slot, field=field)
        if ref.size_code != 4:
            raise CapnpLayoutError(f"{self.message.name}: {field} is not a List(UInt32) (element code {ref.size_code})")
        self.message._check_range(ref.segment, ref.index, (ref.count * 4 + 7) // 8)
        start = ref.index * _WORD
        return list(struct.unpack_from(f"<{ref.count}I", self.message.segments[ref.segment], start))

    def data(self, ref: _ListRef, *, field: str) -> memoryview:
        if ref.size_code != 2:
            raise CapnpLayoutError(f"{self.message.name}: {field} is not Data (element code {ref.size_code})")
        self.message._check_range(ref.segment, ref.index, (ref.count + 7) // 8)
        start = ref.index * _WORD
        return self.message.segments[ref.segment][start : start + ref.count]

    def data_list(self, slot: int, *, field: str) -> list[memoryview]:
        """A ``List(Data)``: each element is a pointer to a byte list."""
        ref = self.list_ref(slot, field=field)
        if ref.size_code != 6:
            raise CapnpLayoutError(f"{self.message.name}: {field} is not a List(Data) (element code {ref.size_code})")
        self.message._check_range(ref.segment, ref.index, ref.count)
        out = []
        for i in range(ref.count):
            item = self.message.follow(ref.segment, ref.index + i, expect="list")
            out.append(memoryview(b"") if item is None else self.data(item, field=f"{field}[{i}]"))
        return out

    def struct_list(self, slot: int, *, field: str) -> list["StructReader"]:
        """A ``List(SomeStruct)`` (composite list: a tag word then the elements)."""
        ref = self.list_ref(slot, field=field)
        if ref.size_code != 7:
            raise CapnpLayoutError(f"{self.message.name}: {field} is not a list of structs (element code {ref.size_code})")
        tag = self.message.word(ref.segment, ref.index)
        if tag & 3 != 0:
            raise CapnpLayoutError(f"{self.message.name}: {field}: bad composite-list tag")
        count = _signed30(tag >> 2)
        data_words, pointer_words = (tag >> 32) & 0xFFFF, tag >> 48
        step = data_words + pointer_words
        if count < 0 or count * step != ref.count:
            raise CapnpLayoutError(f"{self.message.name}: {field}: composite list of {count} × {step} words "
                                   f"does not fill its {ref.count} words")
        self.message._check_range(ref.segment, ref.index + 1, ref.count)
        return [StructReader(self.message, ref.segment, ref.index + 1 + i * step, data_words, pointer_words)
                for i in range(count)]


def payload_uint64(payload: StructReader, *, field: str) -> np.ndarray:
    """concrete's ``Payload {data @0 :List(Data)}``: little-endian u64 split over blobs, joined."""
    blobs = payload.data_list(0, field=f"{field}.data")
    raw = b"".join(bytes(blob) for blob in blobs)
    if len(raw) % 8:
        raise CapnpLayoutError(f"{payload.message.name}: {field} holds {len(raw)} bytes, not whole u64 words")
    return np.frombuffer(raw, dtype="<u8").astype(np.uint64)
