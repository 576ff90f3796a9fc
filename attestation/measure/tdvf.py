"""TDVF (OVMF built for TDX): metadata parsing, MRTD, the TD HOB and CFV digests.

Layout facts (tdx.md section 1): the OVMF GUID table ends 32 bytes before the end of the
image with footer GUID ``96b582de-...``; the u16 before that GUID is the table's size. Entries
``[data][u16 size][16-byte GUID]`` are walked backwards; entry ``e47a6535-...`` holds a u32
``off`` and the TDX metadata descriptor sits at ``len - off``. Older TDVFs instead keep the
descriptor's absolute offset as a u32 at ``len - 0x20``.

MRTD is one SHA-384 over 128-byte records: ``MEM.PAGE.ADD`` per 4 KiB page of every section
without PAGE.AUG, and ``MR.EXTEND`` + 256 data bytes per chunk of sections with MR.EXTEND.
QEMU 8.x emits all PAGE.ADDs of a section before its EXTENDs (two-pass); QEMU >= 9 emits each
page's PAGE.ADD followed by its 16 EXTENDs (single-pass).
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Final

from attestation.measure.errors import FirmwareError
from attestation.measure.events import sha384

PAGE_SIZE: Final = 0x1000
EXTEND_CHUNK: Final = 0x100

TABLE_FOOTER_GUID: Final = uuid.UUID("96b582de-1fb2-45f7-baea-a366c55a082d").bytes_le
TDX_METADATA_GUID: Final = uuid.UUID("e47a6535-984a-4798-865e-4685a7bf8ec2").bytes_le
_FOOTER_END: Final = 32  # bytes after the footer GUID
_LEGACY_POINTER: Final = 0x20
_DESCRIPTOR = struct.Struct("<4sIII")
_SECTION = struct.Struct("<IIQQII")

ATTRIBUTE_MR_EXTEND: Final = 0x1
ATTRIBUTE_PAGE_AUG: Final = 0x2

_PAGE_ADD_HEADER: Final = b"MEM.PAGE.ADD".ljust(16, b"\0")
_MR_EXTEND_HEADER: Final = b"MR.EXTEND".ljust(16, b"\0")
_RECORD_TAIL: Final = bytes(128 - 24)


class PageOrdering(StrEnum):
    """Order in which the host QEMU adds and extends TDVF pages (changes MRTD)."""

    TWO_PASS = "two-pass"
    SINGLE_PASS = "single-pass"


class SectionType(IntEnum):
    BFV = 0
    CFV = 1
    TD_HOB = 2
    TEMP_MEM = 3


@dataclass(frozen=True, slots=True)
class TdvfSection:
    """One entry of the TDX metadata descriptor (all addresses guest-physical)."""

    data_offset: int
    raw_size: int
    memory_address: int
    memory_size: int
    section_type: int
    attributes: int

    @property
    def type_name(self) -> str:
        try:
            return SectionType(self.section_type).name
        except ValueError:
            return f"type{self.section_type}"

    @property
    def extends(self) -> bool:
        return bool(self.attributes & ATTRIBUTE_MR_EXTEND)

    @property
    def page_aug(self) -> bool:
        return bool(self.attributes & ATTRIBUTE_PAGE_AUG)


@dataclass(frozen=True, slots=True)
class Tdvf:
    """A parsed TDVF image. Build it with ``Tdvf.parse(data, source)``."""

    source: str
    metadata_offset: int
    sections: tuple[TdvfSection, ...]
    data: bytes = field(repr=False)

    @classmethod
    def parse(cls, data: bytes, source: str = "firmware") -> Tdvf:
        """Locate and validate the TDX metadata of ``data``; ``source`` names it in errors."""
        offset = _metadata_offset(data, source)
        if offset + _DESCRIPTOR.size > len(data):
            raise FirmwareError(
                source,
                f"truncated: TDX metadata descriptor at offset {offset:#x} runs past the end "
                f"of the file ({len(data):#x} bytes)",
            )
        signature, length, version, count = _DESCRIPTOR.unpack_from(data, offset)
        if signature != b"TDVF":
            raise FirmwareError(
                source, f"no TDX metadata: expected signature 'TDVF' at offset {offset:#x}"
            )
        if version != 1:
            raise FirmwareError(source, f"unsupported TDX metadata version {version}")
        if count == 0:
            raise FirmwareError(source, "TDX metadata lists no sections")
        needed = _DESCRIPTOR.size + count * _SECTION.size
        if length < needed or offset + needed > len(data):
            raise FirmwareError(
                source,
                f"truncated: TDX metadata declares {count} sections ({needed} bytes) but "
                f"only {min(length, len(data) - offset)} bytes are present",
            )
        sections = tuple(
            _check_section(
                TdvfSection(*_SECTION.unpack_from(data, offset + _DESCRIPTOR.size + i * 32)),
                i,
                len(data),
                source,
            )
            for i in range(count)
        )
        return cls(source=source, metadata_offset=offset, sections=sections, data=data)

    def mrtd(self, ordering: PageOrdering) -> bytes:
        """MRTD as the TDX module computes it for this image under ``ordering``."""
        h = hashlib.sha384()
        for piece in self.measurement_stream(ordering):
            h.update(piece)
        return h.digest()

    def measurement_stream(self, ordering: PageOrdering) -> Iterator[bytes]:
        """The bytes MRTD hashes, in order: 128-byte records and 256-byte extended chunks."""
        for section in self.sections:
            pages = range(section.memory_size // PAGE_SIZE)
            content = self._section_memory(section) if section.extends else b""
            if ordering is PageOrdering.TWO_PASS:
                for page in pages:
                    yield from _page_add(section, page)
                for page in pages:
                    yield from _mr_extend(section, content, page)
            else:
                for page in pages:
                    yield from _page_add(section, page)
                    yield from _mr_extend(section, content, page)

    def cfv_digest(self) -> bytes:
        """SHA-384 of the configuration firmware volume (the variable store) as loaded."""
        for section in self.sections:
            if section.section_type == SectionType.CFV:
                return sha384(
                    self.data[section.data_offset : section.data_offset + section.raw_size]
                )
        raise FirmwareError(self.source, "TDX metadata has no CFV section (type 1)")

    def td_hob(self, memory: int) -> bytes:
        """The TD HOB QEMU hands the firmware for a guest with ``memory`` bytes of RAM."""
        return _build_td_hob(self.sections, memory)

    def _section_memory(self, section: TdvfSection) -> bytes:
        raw = self.data[section.data_offset : section.data_offset + section.raw_size]
        return raw + bytes(section.memory_size - section.raw_size)


def _metadata_offset(data: bytes, source: str) -> int:
    size = len(data)
    if size < _FOOTER_END + 18:
        raise FirmwareError(source, f"truncated: {size} bytes is too small for a TDVF image")
    footer_at = size - _FOOTER_END - 16
    if data[footer_at : footer_at + 16] == TABLE_FOOTER_GUID:
        entry = _guid_table_entry(data, footer_at, source)
        if entry is not None:
            if len(entry) < 4:
                raise FirmwareError(source, "TDX metadata GUID entry is shorter than 4 bytes")
            back = int.from_bytes(entry[-4:], "little")
            if not 0 < back <= size:
                raise FirmwareError(
                    source, f"TDX metadata offset {back:#x} points outside the {size:#x}-byte file"
                )
            return size - back
    legacy = int.from_bytes(data[size - _LEGACY_POINTER : size - _LEGACY_POINTER + 4], "little")
    if 0 < legacy <= size - _DESCRIPTOR.size and data[legacy : legacy + 4] == b"TDVF":
        return legacy
    raise FirmwareError(
        source,
        "no TDX metadata: the OVMF GUID table has no TDX metadata entry "
        "(e47a6535-984a-4798-865e-4685a7bf8ec2) and there is no legacy 'TDVF' pointer at "
        "end-0x20; is this firmware built for TDX?",
    )


def _guid_table_entry(data: bytes, footer_at: int, source: str) -> bytes | None:
    (table_size,) = struct.unpack_from("<H", data, footer_at - 2)
    table_end = footer_at - 2  # entries end where the footer entry's size field begins
    table_start = footer_at + 16 - table_size
    if table_size < 18 or table_start < 0:
        raise FirmwareError(source, f"OVMF GUID table size {table_size} is invalid")
    cursor = table_end
    while cursor - 18 >= table_start:
        guid = data[cursor - 16 : cursor]
        (entry_size,) = struct.unpack_from("<H", data, cursor - 18)
        if entry_size < 18 or cursor - entry_size < table_start:
            raise FirmwareError(
                source, f"OVMF GUID table entry ending at {cursor:#x} has invalid size {entry_size}"
            )
        if guid == TDX_METADATA_GUID:
            return data[cursor - entry_size : cursor - 18]
        cursor -= entry_size
    return None


def _check_section(section: TdvfSection, index: int, file_size: int, source: str) -> TdvfSection:
    where = f"TDX metadata section {index} ({section.type_name})"
    if section.memory_address % PAGE_SIZE or section.memory_size % PAGE_SIZE:
        raise FirmwareError(source, f"{where}: address/size not 4 KiB aligned")
    if section.raw_size > section.memory_size:
        raise FirmwareError(source, f"{where}: raw size {section.raw_size:#x} exceeds memory size")
    end = section.data_offset + section.raw_size
    if end > file_size:
        raise FirmwareError(
            source,
            f"truncated: {where} needs file bytes {section.data_offset:#x}..{end:#x} but the "
            f"file has {file_size:#x} bytes",
        )
    return section


def _page_add(section: TdvfSection, page: int) -> Iterator[bytes]:
    if not section.page_aug:
        gpa = section.memory_address + page * PAGE_SIZE
        yield _PAGE_ADD_HEADER + gpa.to_bytes(8, "little") + _RECORD_TAIL


def _mr_extend(section: TdvfSection, content: bytes, page: int) -> Iterator[bytes]:
    if not section.extends:
        return
    base = page * PAGE_SIZE
    for chunk in range(base, base + PAGE_SIZE, EXTEND_CHUNK):
        gpa = section.memory_address + chunk
        yield _MR_EXTEND_HEADER + gpa.to_bytes(8, "little") + _RECORD_TAIL
        yield content[chunk : chunk + EXTEND_CHUNK]


# TD HOB (QEMU hw/i386/tdvf-hob.c as measured by OVMF): a PHIT HOB followed by one resource
# descriptor per RAM range; ranges the firmware accepts up front (TD_HOB and TEMP_MEM sections)
# are system memory (type 0), the rest is unaccepted (type 7). Below 4 GiB a q35 guest has at
# most 2 GiB of RAM when it has 0xB0000000 or more, the rest lives above 4 GiB.
_HOB_PHIT = struct.Struct("<HHIII40x")
_HOB_RESOURCE = struct.Struct("<HHI16sB3xIQQ")
_RESOURCE_SYSTEM_MEMORY: Final = 0
_RESOURCE_UNACCEPTED: Final = 7
_RESOURCE_ATTRIBUTES: Final = 7  # present | initialized | tested
_HIGH_MEMORY_SPLIT: Final = 0xB0000000
_LOW_MEMORY_TOP: Final = 0x80000000
_FOUR_GIB: Final = 0x100000000
_DEFAULT_HOB_BASE: Final = 0x809000


def _build_td_hob(sections: tuple[TdvfSection, ...], memory: int) -> bytes:
    ranges: list[tuple[int, int, bool]] = [(0, memory, False)]
    hob_base = _DEFAULT_HOB_BASE
    for section in sections:
        if section.section_type in (SectionType.TD_HOB, SectionType.TEMP_MEM):
            ranges = _accept(
                ranges, section.memory_address, section.memory_address + section.memory_size
            )
        if section.section_type == SectionType.TD_HOB:
            hob_base = section.memory_address
    hob = bytearray(_HOB_PHIT.pack(0x0001, _HOB_PHIT.size, 0, 9, 0))

    def resource(kind: int, start: int, length: int) -> None:
        hob.extend(
            _HOB_RESOURCE.pack(
                0x0003, _HOB_RESOURCE.size, 0, bytes(16), kind, _RESOURCE_ATTRIBUTES, start, length
            )
        )

    *head, (last_start, last_end, _) = ranges
    for start, end, accepted in head:
        resource(_RESOURCE_SYSTEM_MEMORY if accepted else _RESOURCE_UNACCEPTED, start, end - start)
    if memory >= _HIGH_MEMORY_SPLIT:
        if last_start < _LOW_MEMORY_TOP:
            resource(_RESOURCE_UNACCEPTED, last_start, _LOW_MEMORY_TOP - last_start)
        if last_end > _LOW_MEMORY_TOP:
            resource(_RESOURCE_UNACCEPTED, _FOUR_GIB, last_end - _LOW_MEMORY_TOP)
    else:
        resource(_RESOURCE_UNACCEPTED, last_start, last_end - last_start)
    # EfiEndOfHobList: just past the (unmeasured) 8-byte end-of-list HOB.
    struct.pack_into("<Q", hob, 48, hob_base + len(hob) + 8)
    return bytes(hob)


def _accept(
    ranges: list[tuple[int, int, bool]], start: int, end: int
) -> list[tuple[int, int, bool]]:
    if start >= end:
        return ranges
    result: list[tuple[int, int, bool]] = []
    for r_start, r_end, accepted in ranges:
        if accepted or r_end <= start or r_start >= end:
            result.append((r_start, r_end, accepted))
            continue
        if r_start < start:
            result.append((r_start, start, False))
        if r_end > end:
            result.append((end, r_end, False))
    result.append((start, end, True))
    return sorted(result, key=lambda r: r[0])
