"""Synthetic inputs built byte by byte: TDVF images, PE/bzImage/UKI files, initrds."""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from pathlib import Path

FOOTER_GUID = uuid.UUID("96b582de-1fb2-45f7-baea-a366c55a082d").bytes_le
TDX_GUID = uuid.UUID("e47a6535-984a-4798-865e-4685a7bf8ec2").bytes_le
OVMF = Path("/usr/share/ovmf/OVMF.fd")
DATA = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class SectionSpec:
    data: bytes
    memory_address: int
    memory_size: int
    section_type: int
    attributes: int


def build_tdvf(
    sections: list[SectionSpec], *, image_size: int = 0x8000, guid_table: bool = True
) -> tuple[bytes, list[int]]:
    """A TDVF image with these sections; returns it and each section's data offset."""
    image = bytearray(image_size)
    descriptor_at = 0x100
    offsets, cursor = [], 0x1000
    for spec in sections:
        offsets.append(cursor if spec.data else 0)
        image[cursor : cursor + len(spec.data)] = spec.data
        cursor += len(spec.data)
    assert cursor <= image_size - 0x100, "image too small for the section data"
    descriptor = struct.pack("<4sIII", b"TDVF", 16 + 32 * len(sections), 1, len(sections))
    for spec, offset in zip(sections, offsets, strict=True):
        descriptor += struct.pack(
            "<IIQQII",
            offset,
            len(spec.data),
            spec.memory_address,
            spec.memory_size,
            spec.section_type,
            spec.attributes,
        )
    image[descriptor_at : descriptor_at + len(descriptor)] = descriptor
    if guid_table:
        entry = struct.pack("<I", image_size - descriptor_at) + struct.pack("<H", 22) + TDX_GUID
        footer = struct.pack("<H", len(entry) + 18) + FOOTER_GUID
        table = entry + footer
        end = image_size - 32
        image[end - len(table) : end] = table
    return bytes(image), offsets


@dataclass(frozen=True)
class PeLayout:
    """Where a built PE keeps the fields Authenticode skips (to hash it by hand)."""

    checksum_offset: int
    security_entry_offset: int
    size_of_headers: int
    sections: list[tuple[int, int]]  # (raw offset, raw size) in file order
    certificate_size: int


def build_pe(
    sections: list[tuple[str, bytes]],
    *,
    linux_protocol: int | None = None,
    xloadflags: int = 0,
    initrd_addr_max: int = 0x7FFFFFFF,
    certificate: bytes = b"",
    trailing: bytes = b"",
    directories: int = 6,
) -> tuple[bytes, PeLayout]:
    """A PE32+ image (optionally with a Linux setup header, like a bzImage)."""
    pe_offset, file_alignment, size_of_headers = 0x40, 0x200, 0x200
    optional_size = 112 + 8 * directories
    table_at = pe_offset + 24 + optional_size
    assert table_at + 40 * len(sections) <= 0x1F1
    raw, cursor = [], size_of_headers
    for _name, content in sections:
        padded = content + bytes(-len(content) % file_alignment)
        raw.append((cursor, len(padded), padded))
        cursor += len(padded)
    body = bytearray(cursor)
    body[0:2] = b"MZ"
    struct.pack_into("<I", body, 0x3C, pe_offset)
    body[pe_offset : pe_offset + 4] = b"PE\0\0"
    struct.pack_into(
        "<HHIIIHH", body, pe_offset + 4, 0x8664, len(sections), 0, 0, 0, optional_size, 0x206
    )
    optional = pe_offset + 24
    struct.pack_into("<H", body, optional, 0x20B)
    struct.pack_into("<I", body, optional + 60, size_of_headers)
    struct.pack_into("<I", body, optional + 64, 0x12345678)  # CheckSum: skipped by Authenticode
    struct.pack_into("<I", body, optional + 108, directories)
    for i, ((name, content), (offset, size, padded)) in enumerate(zip(sections, raw, strict=True)):
        struct.pack_into(
            "<8sIIIIIIHHI",
            body,
            table_at + 40 * i,
            name.encode(),
            len(content),
            0x1000 * (i + 1),
            size,
            offset,
            0,
            0,
            0,
            0,
            0x60000020,
        )
        body[offset : offset + size] = padded
    if linux_protocol is not None:
        body[0x1F1] = 1  # setup sectors: setup = 1024 bytes
        body[0x202:0x206] = b"HdrS"
        struct.pack_into("<H", body, 0x206, linux_protocol)
        body[0x211] = 0x01  # LOADED_HIGH
        struct.pack_into("<I", body, 0x22C, initrd_addr_max)
        struct.pack_into("<H", body, 0x236, xloadflags)
    data = bytes(body) + trailing
    security = optional + 112 + 8 * 4
    if certificate:
        cert_at = len(data) + (-len(data) % 8)
        data += bytes(cert_at - len(data)) + certificate
        data = (
            data[:security] + struct.pack("<II", cert_at, len(certificate)) + data[security + 8 :]
        )
    layout = PeLayout(
        checksum_offset=optional + 64,
        security_entry_offset=security,
        size_of_headers=size_of_headers,
        sections=[(offset, size) for offset, size, _ in raw],
        certificate_size=len(certificate),
    )
    return data, layout


def build_bzimage(payload: bytes = b"\x90" * 3000, *, xloadflags: int = 0x40) -> bytes:
    """A bzImage-shaped PE: Linux boot protocol 2.15 header plus .setup/.text sections."""
    data, _ = build_pe(
        [(".setup", bytes(0x200)), (".text", payload)], linux_protocol=0x020F, xloadflags=xloadflags
    )
    return data


def build_uki(
    kernel: bytes, *, cmdline: bytes, initrd: bytes, osrel: bytes = b"ID=mosaik\n"
) -> bytes:
    """A UKI-shaped PE (systemd-stub stand-in code plus the UKI sections)."""
    data, _ = build_pe(
        [
            (".text", b"\xc3" * 100),
            (".osrel", osrel),
            (".cmdline", cmdline),
            (".initrd", initrd),
            (".linux", kernel),
        ]
    )
    return data


def cpio_newc(entries: list[tuple[str, bytes]]) -> bytes:
    """A deterministic cpio (newc) archive ending with TRAILER!!!."""
    out = bytearray()
    for index, (name, content) in enumerate([*entries, ("TRAILER!!!", b"")]):
        encoded = name.encode() + b"\0"
        mode = 0 if name == "TRAILER!!!" else 0o100644
        fields = [index + 1, mode, 0, 0, 1, 0]
        fields += [len(content), 0, 0, 0, 0, len(encoded), 0]
        out += b"070701" + b"".join(f"{v:08x}".encode() for v in fields) + encoded
        out += bytes(-len(out) % 4) + content + bytes(-len(content) % 4)
    return bytes(out)
