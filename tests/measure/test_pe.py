"""Authenticode SHA-384: against pefile's reading of the headers and against a hand-hashed PE."""

from __future__ import annotations

import hashlib

import pefile
import pytest

from attestation.measure import KernelImageError, PeImage, authenticode_sha384
from tests.measure.builders import build_bzimage, build_pe


def pefile_authenticode(data: bytes) -> bytes:
    """Authenticode from pefile's parse of the header fields (an independent reading)."""
    pe = pefile.PE(data=data, fast_load=True)
    header = pe.OPTIONAL_HEADER
    checksum = header.get_field_absolute_offset("CheckSum")
    security = header.DATA_DIRECTORY[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_SECURITY"]]
    security_at = security.get_file_offset()
    h = hashlib.sha384()
    h.update(data[:checksum])
    h.update(data[checksum + 4 : security_at])
    h.update(data[security_at + 8 : header.SizeOfHeaders])
    hashed = header.SizeOfHeaders
    for section in sorted(pe.sections, key=lambda s: s.PointerToRawData):
        if section.SizeOfRawData:
            h.update(
                data[section.PointerToRawData : section.PointerToRawData + section.SizeOfRawData]
            )
            hashed += section.SizeOfRawData
    if len(data) > hashed + security.Size:
        h.update(data[hashed : len(data) - security.Size])
    return h.digest()


@pytest.mark.parametrize(
    ("certificate", "trailing"),
    [(b"", b""), (b"\x30\x82" + b"S" * 70, b""), (b"", b"tail" * 9), (b"C" * 40, b"T" * 13)],
)
def test_matches_pefile_reading(certificate: bytes, trailing: bytes) -> None:
    data, _ = build_pe(
        [(".text", b"\x55" * 1000), (".data", b"\x01\x02" * 300)],
        certificate=certificate,
        trailing=trailing,
    )
    assert authenticode_sha384(data) == pefile_authenticode(data)


def test_matches_hand_hashed_ranges() -> None:
    data, layout = build_pe(
        [(".text", b"code" * 200), (".rdata", b"ro" * 100)], certificate=b"X" * 32
    )
    expected = hashlib.sha384(
        data[: layout.checksum_offset]
        + data[layout.checksum_offset + 4 : layout.security_entry_offset]
        + data[layout.security_entry_offset + 8 : layout.size_of_headers]
        + b"".join(data[o : o + n] for o, n in layout.sections)
    ).digest()
    assert authenticode_sha384(data) == expected


def test_ignores_checksum_and_certificate_but_not_code() -> None:
    data, layout = build_pe([(".text", b"A" * 600)], certificate=b"K" * 24)
    base = authenticode_sha384(data)
    resigned = bytearray(data)
    resigned[layout.checksum_offset] ^= 0xFF
    resigned[-5] ^= 0xFF  # inside the certificate table
    assert authenticode_sha384(bytes(resigned)) == base
    patched = bytearray(data)
    patched[layout.sections[0][0] + 10] ^= 0xFF
    assert authenticode_sha384(bytes(patched)) != base


def test_section_table_is_read() -> None:
    image = PeImage.parse(build_bzimage(b"\x90" * 700), "vmlinuz")
    assert [s.name for s in image.sections] == [".setup", ".text"]
    assert image.section(".text") is not None and image.section(".bss") is None


def test_not_a_pe_is_refused() -> None:
    with pytest.raises(KernelImageError, match=r"vmlinuz: not a PE/COFF image: no 'MZ'"):
        authenticode_sha384(b"\x7fELF" + bytes(200), "vmlinuz")
    with pytest.raises(KernelImageError, match="no 'PE' signature"):
        authenticode_sha384(b"MZ" + bytes(200), "vmlinuz")


def test_truncated_pe_names_the_section() -> None:
    data, layout = build_pe([(".text", b"A" * 600), (".data", b"B" * 600)])
    with pytest.raises(KernelImageError, match=r"k\.efi: truncated: section '\.data'"):
        authenticode_sha384(data[: layout.sections[1][0] + 10], "k.efi")
