"""RTMR1 and RTMR2 for QEMU direct kernel boot (bzImage or UKI passed with ``-kernel``).

RTMR1 (PCR 2-6): the Authenticode hash of the image OVMF boots, then the fixed EFI actions.
QEMU up to 10.1 patches the Linux setup header before handing the kernel to the firmware
(hw/i386 ``x86_load_linux``); QEMU 10.2 leaves confidential guests' kernels untouched.
RTMR2 (PCR 8-15): the Linux EFI stub measures its load options (OVMF passes the command line
plus `` initrd=initrd`` in UTF-16LE with a terminating NUL) and the initrd it loads. A UKI's
systemd-stub (>= 256 with the CC measurement protocol) first measures each UKI section's name
(ASCII + NUL) and contents, in the canonical UKI order, into PCR 11.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from attestation.measure.errors import KernelImageError
from attestation.measure.events import (
    CALLING_EFI_APPLICATION,
    EV_EFI_ACTION,
    EV_EFI_BOOT_SERVICES_APPLICATION,
    EV_EVENT_TAG,
    EV_IPL,
    EV_SEPARATOR,
    EXIT_BOOT_SERVICES,
    EXIT_BOOT_SERVICES_OK,
    SEPARATOR_DATA,
    MeasuredEvent,
    sha384,
)
from attestation.measure.pe import PeImage, authenticode_sha384, section_data

# QEMU's pc/q35 machines reserve this much below the top of low RAM for ACPI data.
ACPI_DATA_SIZE: Final = 0x28000
INITRD_LOAD_OPTION: Final = " initrd=initrd"
_HDRS_MAGIC: Final = 0x53726448  # "HdrS" at 0x202
_XLF_CAN_BE_LOADED_ABOVE_4G: Final = 0x40
_HIGH_MEMORY_SPLIT: Final = 0xB0000000
_LOW_MEMORY_TOP: Final = 0x80000000
_HEADER_SIZE: Final = 8192

# UAPI.5 canonical order; ".pcrsig" is never measured (it signs the measurements).
UKI_MEASURED_SECTIONS: Final = (
    ".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".uname",
    ".sbat", ".pcrpkey", ".profile", ".dtbauto", ".hwids", ".efifw",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SetupHeaderPatch:
    """What QEMU wrote into the setup header (for the measurements' assumptions)."""

    protocol: int
    initrd_address: int | None
    initrd_max: int | None


def below_4g_memory(memory: int) -> int:
    """RAM QEMU's q35 machine maps below 4 GiB for a guest with ``memory`` bytes."""
    low = _LOW_MEMORY_TOP if memory >= _HIGH_MEMORY_SPLIT else _HIGH_MEMORY_SPLIT
    return min(memory, low)


def patch_setup_header(
    kernel: bytes,
    *,
    cmdline: str,
    initrd_size: int | None,
    memory: int,
    source: str = "kernel",
) -> tuple[bytes, SetupHeaderPatch]:
    """The kernel bytes as QEMU <= 10.1 hands them to OVMF, and what it changed.

    An image without the "HdrS" magic (a UKI) counts as boot protocol 0: QEMU then writes the
    legacy command-line magic and offset at 0x20 (in the DOS header), and nothing else.
    """
    if len(kernel) < 0x400:
        raise KernelImageError(source, "truncated: too short for a Linux setup header")
    header = bytearray(kernel[:_HEADER_SIZE])
    (magic,) = struct.unpack_from("<I", header, 0x202)
    protocol = struct.unpack_from("<H", header, 0x206)[0] if magic == _HDRS_MAGIC else 0
    cmdline_size = (len(cmdline.encode()) + 16) & ~15
    if protocol < 0x202 or not header[0x211] & 0x01:
        real_addr, cmdline_addr = 0x90000, 0x9A000 - cmdline_size
    else:
        real_addr, cmdline_addr = 0x10000, 0x20000
    if protocol >= 0x202:
        struct.pack_into("<I", header, 0x228, cmdline_addr)
    else:
        struct.pack_into("<HH", header, 0x20, 0xA33F, cmdline_addr - real_addr)
    video_mode = _vga_mode(cmdline, source)
    if video_mode is not None:
        struct.pack_into("<H", header, 0x1FA, video_mode)
    if protocol >= 0x200:
        header[0x210] = 0xB0  # type_of_loader: QEMU
    if protocol >= 0x201:
        header[0x211] |= 0x80  # CAN_USE_HEAP
        struct.pack_into("<H", header, 0x224, cmdline_addr - real_addr - 0x200)
    initrd_address = initrd_max = None
    if initrd_size is not None:
        if protocol < 0x200:
            raise KernelImageError(
                source,
                "kernel has no Linux boot protocol >= 2.00 header; QEMU cannot pass it an initrd",
            )
        initrd_max = _initrd_max(header, protocol, memory)
        if initrd_size >= initrd_max:
            raise KernelImageError(
                source, f"initrd of {initrd_size} bytes exceeds QEMU's limit {initrd_max}"
            )
        initrd_address = (initrd_max - initrd_size) & ~4095
        struct.pack_into("<II", header, 0x218, initrd_address, initrd_size)
    setup_sectors = header[0x1F1] or 4
    setup_size = min((setup_sectors + 1) * 512, _HEADER_SIZE)
    if setup_size > len(kernel):
        raise KernelImageError(source, "truncated: shorter than its declared setup sectors")
    patched = bytes(header[:setup_size]) + kernel[setup_size:]
    return patched, SetupHeaderPatch(protocol, initrd_address, initrd_max)


def _initrd_max(header: bytearray, protocol: int, memory: int) -> int:
    if (
        protocol >= 0x20C
        and struct.unpack_from("<H", header, 0x236)[0] & _XLF_CAN_BE_LOADED_ABOVE_4G
    ):
        limit = 0xFFFFFFFF
    elif protocol >= 0x203:
        limit = struct.unpack_from("<I", header, 0x22C)[0]
    else:
        limit = 0x37FFFFFF
    available = below_4g_memory(memory) - ACPI_DATA_SIZE
    return available - 1 if limit >= available else limit


def _vga_mode(cmdline: str, source: str) -> int | None:
    at = cmdline.find("vga=")
    if at < 0:
        return None
    value = cmdline[at + 4 :].split(" ", 1)[0]
    for word, mode in (("normal", 0xFFFF), ("ext", 0xFFFE), ("ask", 0xFFFD)):
        if value.startswith(word):
            return mode
    try:
        return int(value, 0) & 0xFFFF
    except ValueError:
        raise KernelImageError(
            source, f"invalid 'vga=' value {value!r} in the command line"
        ) from None


def load_options(cmdline: str, has_initrd: bool) -> bytes:
    """The UTF-16LE load options OVMF gives a directly booted kernel (NUL-terminated).

    QEMU always provides a command line (possibly empty), so they are never absent.
    """
    text = cmdline + (INITRD_LOAD_OPTION if has_initrd else "")
    return (text + "\0").encode("utf-16-le")


def _efi_boot_events(image: str, image_digest: bytes, *extra: MeasuredEvent) -> list[MeasuredEvent]:
    return [
        MeasuredEvent(1, f"{image} authenticode", image_digest, EV_EFI_BOOT_SERVICES_APPLICATION),
        MeasuredEvent(1, "calling EFI application", sha384(CALLING_EFI_APPLICATION), EV_EFI_ACTION),
        MeasuredEvent(1, "separator", sha384(SEPARATOR_DATA), EV_SEPARATOR),
        *extra,
        MeasuredEvent(1, "exit boot services", sha384(EXIT_BOOT_SERVICES), EV_EFI_ACTION),
        MeasuredEvent(
            1, "exit boot services returned", sha384(EXIT_BOOT_SERVICES_OK), EV_EFI_ACTION
        ),
    ]


def _stub_events(options: bytes, initrd: bytes | None) -> list[MeasuredEvent]:
    """What the Linux EFI stub measures: its load options, then the initrd it loaded."""
    events = [MeasuredEvent(2, "kernel command line", sha384(options), EV_EVENT_TAG)]
    if initrd is not None:
        events.append(MeasuredEvent(2, "initrd", sha384(initrd), EV_EVENT_TAG))
    return events


def direct_boot_events(
    kernel: bytes,
    *,
    initrd: bytes | None,
    cmdline: str,
    memory: int,
    patch_header: bool,
    source: str = "kernel",
) -> tuple[list[MeasuredEvent], SetupHeaderPatch | None]:
    """RTMR1 and RTMR2 events for ``-kernel K [-initrd I] -append C``."""
    patch = None
    measured = kernel
    if patch_header:
        initrd_size = None if initrd is None else len(initrd)
        measured, patch = patch_setup_header(
            kernel, cmdline=cmdline, initrd_size=initrd_size, memory=memory, source=source
        )
    events = _efi_boot_events("kernel", authenticode_sha384(measured, source))
    return events + _stub_events(load_options(cmdline, initrd is not None), initrd), patch


def uki_boot_events(
    uki: bytes, *, memory: int, patch_header: bool, source: str = "uki"
) -> tuple[list[MeasuredEvent], SetupHeaderPatch | None]:
    """RTMR1 and RTMR2 events for a UKI booted with ``-kernel`` alone (no -initrd/-append).

    Assumes systemd-stub >= 256 (measures sections through the CC measurement protocol) and
    no add-ons, credentials or sysexts: the kernel gets ``.cmdline`` and ``.ucode`` + ``.initrd``.
    """
    image = PeImage.parse(uki, source)
    sections = {
        name: section_data(uki, s) for name in UKI_MEASURED_SECTIONS if (s := image.section(name))
    }
    if ".linux" not in sections:
        raise KernelImageError(source, "not a UKI: no '.linux' section")
    patch = None
    measured = uki
    if patch_header:
        measured, patch = patch_setup_header(
            uki, cmdline="", initrd_size=None, memory=memory, source=source
        )
    linux_digest = authenticode_sha384(sections[".linux"], f"{source} (.linux section)")
    events = _efi_boot_events(
        "uki",
        authenticode_sha384(measured, source),
        MeasuredEvent(1, "uki .linux authenticode", linux_digest, EV_EFI_BOOT_SERVICES_APPLICATION),
    )
    for name, content in sections.items():
        events.append(
            MeasuredEvent(2, f"uki section name {name}", sha384(name.encode() + b"\0"), EV_IPL)
        )
        events.append(MeasuredEvent(2, f"uki section {name}", sha384(content), EV_IPL))
    cmdline = _stub_cmdline(sections.get(".cmdline", b""))
    initrd = None
    if ".initrd" in sections or ".ucode" in sections:
        initrd = sections.get(".ucode", b"") + sections.get(".initrd", b"")
    # systemd-stub hands the kernel the initrd itself: no " initrd=initrd" in its options.
    return events + _stub_events((cmdline + "\0").encode("utf-16-le"), initrd), patch


def _stub_cmdline(raw: bytes) -> str:
    # systemd-stub reads .cmdline up to the first NUL and turns control characters into spaces.
    text = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
    return "".join(" " if ord(c) < 0x20 else c for c in text)
