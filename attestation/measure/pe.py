"""PE/COFF parsing and the Authenticode SHA-384 that OVMF measures for EFI applications.

The hash follows EDK2's ``HashPeImage`` (the code that measures what OVMF boots): the headers
up to SizeOfHeaders without the CheckSum field (optional header + 64) and without the
Security data-directory entry (optional header + 96 in PE32, + 112 in PE32+), then every
section with raw data in PointerToRawData order, then any trailing bytes except the
certificate table at the end of the file.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Final

from attestation.measure.errors import KernelImageError

_PE32: Final = 0x10B
_PE32_PLUS: Final = 0x20B
_SECTION_HEADER: Final = struct.Struct("<8sIIIIIIHHI")
_SECURITY_DIRECTORY: Final = 4


@dataclass(frozen=True, slots=True)
class PeSection:
    name: str
    virtual_size: int
    virtual_address: int
    raw_size: int
    raw_offset: int


@dataclass(frozen=True, slots=True)
class PeImage:
    """The parts of a PE/COFF header that Authenticode and UKI measurement need."""

    source: str
    checksum_offset: int
    security_entry_offset: int | None  # None when the image has no Security directory slot
    size_of_headers: int
    certificate_size: int
    sections: tuple[PeSection, ...]

    @classmethod
    def parse(cls, data: bytes, source: str = "kernel") -> PeImage:
        if len(data) < 0x40 or data[:2] != b"MZ":
            raise KernelImageError(source, "not a PE/COFF image: no 'MZ' DOS header")
        (pe_offset,) = struct.unpack_from("<I", data, 0x3C)
        if pe_offset + 24 > len(data) or data[pe_offset : pe_offset + 4] != b"PE\0\0":
            raise KernelImageError(
                source, f"not a PE/COFF image: no 'PE' signature at e_lfanew {pe_offset:#x}"
            )
        coff = pe_offset + 4
        section_count, optional_size = struct.unpack_from("<H12xH", data, coff + 2)
        optional = coff + 20
        magic = _u16(data, optional, source, "optional header magic")
        if magic == _PE32:
            directories, count_at = optional + 96, optional + 92
        elif magic == _PE32_PLUS:
            directories, count_at = optional + 112, optional + 108
        else:
            raise KernelImageError(source, f"unknown optional header magic {magic:#x}")
        directory_count = _u32(data, count_at, source, "NumberOfRvaAndSizes")
        size_of_headers = _u32(data, optional + 60, source, "SizeOfHeaders")
        security: int | None = None
        certificate_size = 0
        if directory_count > _SECURITY_DIRECTORY:
            security = directories + 8 * _SECURITY_DIRECTORY
            certificate_size = _u32(data, security + 4, source, "Security directory")
        table = optional + optional_size
        if table + section_count * _SECTION_HEADER.size > len(data):
            raise KernelImageError(source, "truncated: section table runs past the end of the file")
        if not optional + 64 < size_of_headers <= len(data):
            raise KernelImageError(
                source,
                f"SizeOfHeaders {size_of_headers:#x} does not fit the {len(data):#x}-byte file",
            )
        sections = []
        for i in range(section_count):
            name, vsize, vaddr, rsize, roffset, *_ = _SECTION_HEADER.unpack_from(
                data, table + i * _SECTION_HEADER.size
            )
            label = name.rstrip(b"\0").decode("ascii", "replace")
            if roffset + rsize > len(data):
                raise KernelImageError(
                    source,
                    f"truncated: section {label!r} needs bytes {roffset:#x}..{roffset + rsize:#x} "
                    f"but the file has {len(data):#x}",
                )
            sections.append(PeSection(label, vsize, vaddr, rsize, roffset))
        return cls(
            source=source,
            checksum_offset=optional + 64,
            security_entry_offset=security,
            size_of_headers=size_of_headers,
            certificate_size=certificate_size,
            sections=tuple(sections),
        )

    def section(self, name: str) -> PeSection | None:
        return next((s for s in self.sections if s.name == name), None)


def section_data(data: bytes, section: PeSection) -> bytes:
    """A section's contents as loaded: raw bytes trimmed (or zero-extended) to VirtualSize."""
    size = section.virtual_size or section.raw_size
    raw = data[section.raw_offset : section.raw_offset + min(size, section.raw_size)]
    return raw + bytes(size - len(raw))


def authenticode_sha384(data: bytes, source: str = "kernel") -> bytes:
    """Authenticode SHA-384 of the PE image ``data`` (as EDK2 measures it)."""
    return authenticode_digest(data, "sha384", source)


def authenticode_digest(data: bytes, algorithm: str, source: str = "kernel") -> bytes:
    """Authenticode digest of ``data`` with any hashlib ``algorithm`` (signatures use sha256)."""
    image = PeImage.parse(data, source)
    h = hashlib.new(algorithm)
    h.update(data[: image.checksum_offset])
    if image.security_entry_offset is None:
        h.update(data[image.checksum_offset + 4 : image.size_of_headers])
    else:
        h.update(data[image.checksum_offset + 4 : image.security_entry_offset])
        h.update(data[image.security_entry_offset + 8 : image.size_of_headers])
    hashed = image.size_of_headers
    for section in sorted(image.sections, key=lambda s: s.raw_offset):
        if section.raw_size:
            h.update(data[section.raw_offset : section.raw_offset + section.raw_size])
            hashed += section.raw_size
    if len(data) > hashed + image.certificate_size:
        h.update(data[hashed : len(data) - image.certificate_size])
    return h.digest()


def _u16(data: bytes, offset: int, source: str, what: str) -> int:
    if offset + 2 > len(data):
        raise KernelImageError(
            source, f"truncated: {what} at {offset:#x} is past the end of the file"
        )
    return int.from_bytes(data[offset : offset + 2], "little")


def _u32(data: bytes, offset: int, source: str, what: str) -> int:
    if offset + 4 > len(data):
        raise KernelImageError(
            source, f"truncated: {what} at {offset:#x} is past the end of the file"
        )
    return int.from_bytes(data[offset : offset + 4], "little")
