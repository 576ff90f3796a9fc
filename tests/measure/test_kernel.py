"""RTMR1/RTMR2 for direct boot and UKIs: QEMU's setup-header patch, fixed EFI events."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import struct
from pathlib import Path

import pytest

from attestation.measure import (
    KernelImageError,
    MeasureError,
    PeImage,
    QemuVersion,
    authenticode_digest,
    authenticode_sha384,
    direct_boot_events,
    fold,
    patch_setup_header,
    quote_registers,
    uki_boot_events,
)
from attestation.measure.tdvf import PageOrdering
from tests.measure.builders import DATA, build_bzimage, build_pe, build_uki
from tests.measure.test_pe import pefile_authenticode

GIB = 1 << 30


def sha384(data: bytes) -> bytes:
    return hashlib.sha384(data).digest()


EFI_BOOT_TAIL = [
    sha384(b"Exit Boot Services Invocation"),
    sha384(b"Exit Boot Services Returned with Success"),
]
EFI_BOOT_HEAD = [sha384(b"Calling EFI Application from Boot Option"), sha384(bytes(4))]


def expected_patch(kernel: bytes, initrd_size: int, initrd_max: int) -> bytes:
    patched = bytearray(kernel)
    patched[0x210] = 0xB0
    patched[0x211] |= 0x80
    struct.pack_into("<H", patched, 0x224, 0xFE00)
    struct.pack_into("<I", patched, 0x228, 0x20000)
    struct.pack_into("<II", patched, 0x218, (initrd_max - initrd_size) & ~4095, initrd_size)
    return bytes(patched)


@pytest.mark.parametrize(
    ("memory", "xloadflags", "addr_max", "initrd_max"),
    [
        (2 * GIB, 0x40, 0, 0x80000000 - 0x28000 - 1),  # above-4G capable: capped by low RAM
        (4 * GIB, 0x40, 0, 0x80000000 - 0x28000 - 1),  # >= 0xB0000000: 2 GiB below 4 GiB
        (1 * GIB, 0x40, 0, 0x40000000 - 0x28000 - 1),
        (2 * GIB, 0x00, 0x37FFFFFF, 0x37FFFFFF),  # the header's initrd_addr_max wins
    ],
)
def test_setup_header_patch_matches_qemu(
    memory: int, xloadflags: int, addr_max: int, initrd_max: int
) -> None:
    kernel, _ = build_pe(
        [(".setup", bytes(0x200)), (".text", b"\x90" * 900)],
        linux_protocol=0x020F,
        xloadflags=xloadflags,
        initrd_addr_max=addr_max,
    )
    patched, patch = patch_setup_header(
        kernel, cmdline="console=ttyS0", initrd_size=12345, memory=memory
    )
    assert patched == expected_patch(kernel, 12345, initrd_max)
    assert patch.initrd_address == (initrd_max - 12345) & ~4095
    assert patch.protocol == 0x020F


def test_vga_parameter_is_patched() -> None:
    kernel = build_bzimage()
    patched, _ = patch_setup_header(kernel, cmdline="quiet vga=0x317", initrd_size=None, memory=GIB)
    assert struct.unpack_from("<H", patched, 0x1FA)[0] == 0x317
    with pytest.raises(KernelImageError, match="vga="):
        patch_setup_header(kernel, cmdline="vga=big", initrd_size=None, memory=GIB)


def test_direct_boot_events_patched_and_unpatched() -> None:
    kernel, initrd = build_bzimage(), b"070701" + bytes(500)
    cmdline = "console=ttyS0 root=/dev/ram0"
    options = (cmdline + " initrd=initrd").encode("utf-16-le") + b"\0\0"
    for patch in (True, False):
        events, _ = direct_boot_events(
            kernel, initrd=initrd, cmdline=cmdline, memory=2 * GIB, patch_header=patch
        )
        measured = expected_patch(kernel, len(initrd), 0x7FFD7FFF) if patch else kernel
        assert [e.digest for e in events if e.register == 1] == [
            pefile_authenticode(measured),
            *EFI_BOOT_HEAD,
            *EFI_BOOT_TAIL,
        ]
        assert [e.digest for e in events if e.register == 2] == [sha384(options), sha384(initrd)]


def test_direct_boot_without_initrd_measures_plain_options() -> None:
    events, patch = direct_boot_events(
        build_bzimage(), initrd=None, cmdline="quiet", memory=GIB, patch_header=True
    )
    assert patch is not None and patch.initrd_address is None
    assert [e.digest for e in events if e.register == 2] == [sha384("quiet\0".encode("utf-16-le"))]


def cbor_bytes(blob: bytes, key: bytes) -> bytes:
    """The 48-byte string after ``key`` in dstack's measurement CBOR (0x58 0x30 prefix)."""
    at = blob.index(key) + len(key)
    assert blob[at : at + 2] == b"\x58\x30"
    return blob[at + 2 : at + 50]


def test_event_structure_reproduces_real_quote() -> None:
    """dstack's fixture lists its kernel/cmdline/initrd digests; our RTMR1/RTMR2 event lists with
    those digests in place must give the RTMR1/RTMR2 of the real quote."""
    import base64

    fixture = json.loads((DATA / "dstack_tdx-lite-getquote.json").read_text())
    vm = json.loads(fixture["vm_config"])
    blob = base64.b64decode(vm["tdx_measurement"]["measurement"])
    quote = quote_registers(bytes.fromhex(fixture["quote"]))
    events, _ = direct_boot_events(
        build_bzimage(), initrd=b"x", cmdline="c", memory=2 * GIB, patch_header=True
    )
    replaced = {
        "kernel authenticode": cbor_bytes(blob, b"kernel_authenticode"),
        "kernel command line": cbor_bytes(blob, b"cmdline_sha384"),
        "initrd": cbor_bytes(blob, b"initrd_sha384"),
    }
    digests = {1: [], 2: []}  # type: dict[int, list[bytes]]
    for event in events:
        digests[event.register].append(replaced.get(event.name, event.digest))
    assert fold(digests[1]) == quote.rtmrs[1]
    assert fold(digests[2]) == quote.rtmrs[2]


def test_uki_events_follow_canonical_section_order() -> None:
    linux = build_bzimage(b"\x90" * 1500)
    initrd = b"070701" + bytes(300)
    uki = build_uki(linux, cmdline=b"console=ttyS0\n", initrd=initrd)
    events, patch = uki_boot_events(uki, memory=2 * GIB, patch_header=False)
    assert patch is None
    linux_section = linux + bytes(-len(linux) % 0x200)  # VirtualSize is the unpadded length
    assert [e.digest for e in events if e.register == 1] == [
        pefile_authenticode(uki),
        *EFI_BOOT_HEAD,
        authenticode_sha384(linux_section[: len(linux)]),
        *EFI_BOOT_TAIL,
    ]
    rtmr2 = [e.name for e in events if e.register == 2]
    assert rtmr2 == [
        "uki section name .linux",
        "uki section .linux",
        "uki section name .osrel",
        "uki section .osrel",
        "uki section name .cmdline",
        "uki section .cmdline",
        "uki section name .initrd",
        "uki section .initrd",
        "kernel command line",
        "initrd",
    ]
    by_name = {e.name: e.digest for e in events}
    assert by_name["uki section name .cmdline"] == sha384(b".cmdline\0")
    assert by_name["uki section .cmdline"] == sha384(b"console=ttyS0\n")
    assert by_name["kernel command line"] == sha384("console=ttyS0 \0".encode("utf-16-le"))
    assert by_name["initrd"] == sha384(initrd)


def test_uki_without_linux_section_is_refused() -> None:
    not_uki, _ = build_pe([(".text", b"\xc3" * 10)])
    with pytest.raises(KernelImageError, match=r"app\.efi: not a UKI"):
        uki_boot_events(not_uki, memory=GIB, patch_header=False, source="app.efi")


def test_non_pe_kernel_is_refused() -> None:
    with pytest.raises(KernelImageError, match=r"vmlinux: not a PE/COFF image"):
        direct_boot_events(
            b"\x7fELF" + bytes(5000),
            initrd=None,
            cmdline="",
            memory=GIB,
            patch_header=False,
            source="vmlinux",
        )


@pytest.mark.parametrize(
    ("text", "ordering", "patches"),
    [
        ("8.2.2", PageOrdering.TWO_PASS, True),
        ("9.1.0 (Debian 1:9.1.0+ds-1)", PageOrdering.SINGLE_PASS, True),
        ("10.1", PageOrdering.SINGLE_PASS, True),
        ("10.2.0", PageOrdering.SINGLE_PASS, False),
    ],
)
def test_qemu_version_behaviours(text: str, ordering: PageOrdering, patches: bool) -> None:
    version = QemuVersion.parse(text)
    assert version.page_ordering is ordering
    assert version.patches_setup_header is patches


@pytest.mark.parametrize("text", ["qemu", "7.2.0", ""])
def test_bad_qemu_versions(text: str) -> None:
    with pytest.raises(MeasureError, match="--qemu-version"):
        QemuVersion.parse(text)


def real_kernel() -> Path | None:
    """A real (Debian, signed) kernel: $MOSAIK_TEST_KERNEL or the newest /boot/vmlinuz-*."""
    named = os.environ.get("MOSAIK_TEST_KERNEL")
    if named:
        return Path(named)
    found = sorted(glob.glob("/boot/vmlinuz-*"))
    return Path(found[-1]) if found else None


def signed_sha256(kernel: bytes, certificate_size: int) -> bytes | None:
    """The SHA-256 Authenticode digest inside the image's own PKCS#7 signature, if any."""
    certificate = kernel[len(kernel) - certificate_size :]
    at = certificate.find(bytes.fromhex("0609608648016503040201"))  # OID sha256
    octets = certificate.find(b"\x04\x20", at) if at >= 0 else -1
    return None if octets < 0 else certificate[octets + 2 : octets + 34]


def test_real_kernel() -> None:
    path = real_kernel()
    if path is None:
        pytest.skip("no real kernel: set MOSAIK_TEST_KERNEL or install one in /boot")
    kernel = path.read_bytes()
    assert authenticode_sha384(kernel) == pefile_authenticode(kernel)
    image = PeImage.parse(kernel, str(path))
    published = signed_sha256(kernel, image.certificate_size) if image.certificate_size else None
    if published is not None:  # the signer's own Authenticode digest: a published value
        assert authenticode_digest(kernel, "sha256") == published
    patched, patch = patch_setup_header(
        kernel, cmdline="console=ttyS0", initrd_size=1 << 24, memory=2 * GIB
    )
    assert patch.protocol >= 0x20C
    assert patched == expected_patch(kernel, 1 << 24, patch.initrd_max or 0)
