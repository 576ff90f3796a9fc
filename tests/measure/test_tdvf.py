"""MRTD: Debian's OVMF.fd in both orderings, a byte-exact synthetic TDVF, and bad images."""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attestation.measure import FirmwareError, PageOrdering, Tdvf
from tests.measure.builders import OVMF, SectionSpec, build_tdvf

# Derived once with this implementation from Debian bookworm's ovmf 2022.11-6+deb12u2 OVMF.fd
# and cross-checked by the independent implementation below (test_ovmf_matches_independent).
OVMF_SHA256 = "7b456907dd0786d415999e801a1ac4637b8ed4d7cf5378cfc6edbe5e574dd773"
OVMF_MRTD = {
    PageOrdering.TWO_PASS: "acccbcc870a381adab0d3919d90a7f268ac3b0364771f202ed4bb4e892d045b3"
    "3db3b32e6924cba830a724eed443f7e1",
    PageOrdering.SINGLE_PASS: "4c7206f0f483c524f12c366c711e9049030a8d47c471ee5aa9c4999a08de4057"
    "fb887fed0744d5631a212967fb231c47",
}


@pytest.fixture(scope="module")
def ovmf() -> bytes:
    if not OVMF.exists():
        pytest.skip(f"{OVMF} is not installed (Debian package 'ovmf'; make debian-deps)")
    return OVMF.read_bytes()


def independent_mrtd(image: bytes, two_pass: bool) -> bytes:
    """A second, deliberately plain MRTD computation: find the descriptor through the GUID
    entry by searching, materialise the whole record stream, hash it once."""
    tdx_guid = bytes.fromhex("35657ae44a989847865e4685a7bf8ec2")
    at = image.rfind(tdx_guid)
    back = int.from_bytes(image[at - 6 : at - 2], "little")
    meta = len(image) - back
    assert image[meta : meta + 4] == b"TDVF"
    count = int.from_bytes(image[meta + 12 : meta + 16], "little")
    stream = []
    for i in range(count):
        off, raw, addr, size, _kind, attrs = struct.unpack(
            "<IIQQII", image[meta + 16 + 32 * i : meta + 48 + 32 * i]
        )
        memory = image[off : off + raw] + bytes(size - raw)
        adds = [
            b"MEM.PAGE.ADD" + bytes(4) + (addr + p).to_bytes(8, "little") + bytes(104)
            for p in range(0, size, 4096)
            if not attrs & 2
        ]
        extends = [
            [
                b"MR.EXTEND"
                + bytes(7)
                + (addr + c).to_bytes(8, "little")
                + bytes(104)
                + memory[c : c + 256]
                for c in range(p, p + 4096, 256)
            ]
            if attrs & 1
            else []
            for p in range(0, size, 4096)
        ]
        if two_pass:
            stream += adds + [b"".join(e) for e in extends]
        else:
            for add, ext in zip(adds, extends, strict=True):
                stream += [add, b"".join(ext)]
    return hashlib.sha384(b"".join(stream)).digest()


def test_ovmf_sections_parse(ovmf: bytes) -> None:
    tdvf = Tdvf.parse(ovmf, str(OVMF))
    kinds = [s.type_name for s in tdvf.sections]
    assert kinds[:2] == ["BFV", "CFV"] and "TD_HOB" in kinds
    assert [s.extends for s in tdvf.sections] == [True] + [False] * (len(kinds) - 1)


@pytest.mark.parametrize("ordering", list(PageOrdering))
def test_ovmf_matches_independent(ovmf: bytes, ordering: PageOrdering) -> None:
    ours = Tdvf.parse(ovmf).mrtd(ordering)
    assert ours == independent_mrtd(ovmf, ordering is PageOrdering.TWO_PASS)


@pytest.mark.parametrize("ordering", list(PageOrdering))
def test_ovmf_fixed_values(ovmf: bytes, ordering: PageOrdering) -> None:
    if hashlib.sha256(ovmf).hexdigest() != OVMF_SHA256:
        pytest.skip("installed OVMF.fd is not the bookworm build the fixed values were taken from")
    assert Tdvf.parse(ovmf).mrtd(ordering).hex() == OVMF_MRTD[ordering]


def test_orderings_differ(ovmf: bytes) -> None:
    tdvf = Tdvf.parse(ovmf)
    assert tdvf.mrtd(PageOrdering.TWO_PASS) != tdvf.mrtd(PageOrdering.SINGLE_PASS)


@settings(max_examples=25, deadline=None)
@given(position=st.floats(0, 1, exclude_max=True), delta=st.integers(1, 255))
def test_byte_change_in_measured_region_changes_mrtd(
    ovmf: bytes, position: float, delta: int
) -> None:
    tdvf = Tdvf.parse(ovmf)
    bfv = tdvf.sections[0]
    # Stay clear of the metadata and GUID table (inside the BFV): changing them changes parsing.
    limit = min(tdvf.metadata_offset, len(ovmf) - 0x1000) - bfv.data_offset
    offset = bfv.data_offset + int(position * limit)
    changed = bytearray(ovmf)
    changed[offset] = (changed[offset] + delta) % 256
    for ordering in PageOrdering:
        assert Tdvf.parse(bytes(changed)).mrtd(ordering) != tdvf.mrtd(ordering), hex(offset)


@settings(max_examples=25, deadline=None)
@given(position=st.floats(0, 1, exclude_max=True), delta=st.integers(1, 255))
def test_byte_change_outside_measured_region_keeps_mrtd(
    ovmf: bytes, position: float, delta: int
) -> None:
    tdvf = Tdvf.parse(ovmf)
    cfv = next(s for s in tdvf.sections if s.type_name == "CFV")
    offset = cfv.data_offset + int(position * cfv.raw_size)
    changed = bytearray(ovmf)
    changed[offset] = (changed[offset] + delta) % 256
    assert Tdvf.parse(bytes(changed)).mrtd(PageOrdering.SINGLE_PASS) == tdvf.mrtd(
        PageOrdering.SINGLE_PASS
    )


# Not periodic in 256 or 4096, so a chunk taken from the wrong offset shows.
BFV_DATA = hashlib.shake_256(b"bfv").digest(0x2000)


def synthetic() -> tuple[bytes, list[int]]:
    return build_tdvf(
        [
            SectionSpec(BFV_DATA, 0xFFFF0000, 0x2000, 0, 0x1),  # BFV: 2 pages, extended
            SectionSpec(b"\xaa" * 0x1000, 0xFFFE0000, 0x1000, 1, 0x0),  # CFV, added only
            SectionSpec(b"", 0x800000, 0x3000, 3, 0x0),  # TEMP_MEM, 3 pages
            SectionSpec(b"", 0x900000, 0x2000, 3, 0x2),  # PAGE.AUG: not measured
        ]
    )


def record(tag: bytes, gpa: int) -> bytes:
    return tag.ljust(16, b"\0") + struct.pack("<Q", gpa) + bytes(104)


@pytest.mark.parametrize("ordering", list(PageOrdering))
def test_synthetic_record_stream_byte_for_byte(ordering: PageOrdering) -> None:
    image, _ = synthetic()
    bfv = BFV_DATA

    def extends(page: int) -> bytes:
        base = 0xFFFF0000 + page * 0x1000
        return b"".join(
            record(b"MR.EXTEND", base + c) + bfv[page * 0x1000 + c : page * 0x1000 + c + 256]
            for c in range(0, 0x1000, 256)
        )

    adds = [record(b"MEM.PAGE.ADD", 0xFFFF0000 + p * 0x1000) for p in range(2)]
    if ordering is PageOrdering.TWO_PASS:
        bfv_stream = adds[0] + adds[1] + extends(0) + extends(1)
    else:
        bfv_stream = adds[0] + extends(0) + adds[1] + extends(1)
    expected = (
        bfv_stream
        + record(b"MEM.PAGE.ADD", 0xFFFE0000)
        + b"".join(record(b"MEM.PAGE.ADD", 0x800000 + p * 0x1000) for p in range(3))
    )
    stream = b"".join(Tdvf.parse(image).measurement_stream(ordering))
    assert stream == expected
    assert Tdvf.parse(image).mrtd(ordering) == hashlib.sha384(expected).digest()


def test_extended_section_is_zero_padded_past_raw_size() -> None:
    image, _ = build_tdvf([SectionSpec(b"\x01" * 100, 0x1000, 0x1000, 0, 1)])
    stream = b"".join(Tdvf.parse(image).measurement_stream(PageOrdering.SINGLE_PASS))
    assert stream[128 + 128 : 128 + 128 + 256] == b"\x01" * 100 + bytes(156)


def test_legacy_metadata_pointer() -> None:
    image, _ = build_tdvf([SectionSpec(b"", 0x800000, 0x1000, 3, 0)], guid_table=False)
    legacy = bytearray(image)
    struct.pack_into("<I", legacy, len(legacy) - 0x20, 0x100)
    assert Tdvf.parse(bytes(legacy)).metadata_offset == 0x100


def test_firmware_without_tdx_metadata_is_refused() -> None:
    with pytest.raises(FirmwareError, match=r"plain\.fd: no TDX metadata"):
        Tdvf.parse(bytes(0x10000), "plain.fd")


def test_ovmf_guid_table_without_tdx_entry_is_refused() -> None:
    image, _ = synthetic()
    no_entry = bytearray(image)
    at = no_entry.rfind(bytes.fromhex("35657ae44a989847865e4685a7bf8ec2"))
    no_entry[at] ^= 0xFF
    with pytest.raises(FirmwareError, match="no TDX metadata"):
        Tdvf.parse(bytes(no_entry), "fw.fd")


def test_truncated_firmware_names_the_section(ovmf: bytes) -> None:
    cut = ovmf[:0x100000] + ovmf[-0x1000:]  # keeps the tail (metadata) but loses BFV data
    with pytest.raises(
        FirmwareError, match=r"OVMF-cut\.fd: truncated: TDX metadata section 0 \(BFV\)"
    ):
        Tdvf.parse(cut, "OVMF-cut.fd")


def test_tiny_firmware_is_refused() -> None:
    with pytest.raises(FirmwareError, match="too small"):
        Tdvf.parse(b"\0" * 10, "tiny.fd")


def test_bad_metadata_fields_are_refused() -> None:
    image, _ = build_tdvf([SectionSpec(b"", 0x800100, 0x1000, 3, 0)])
    with pytest.raises(FirmwareError, match="not 4 KiB aligned"):
        Tdvf.parse(image, "fw")
    image, _ = build_tdvf([SectionSpec(b"x" * 0x2000, 0x800000, 0x1000, 0, 1)], image_size=0x8000)
    with pytest.raises(FirmwareError, match="exceeds memory size"):
        Tdvf.parse(image, "fw")
