"""RTMR0: what OVMF measures about itself and the VM before booting (PCR 1 and 7).

Recomputed from the firmware: the TD HOB (from the TDVF's TD_HOB/TEMP_MEM sections and the
RAM size), the CFV (variable store) digest, the empty Secure Boot variables, the separator and
the boot variables OVMF creates. Taken from the VM config: the three ACPI fw_cfg blobs and,
for edk2-stable202505 OVMF, the EV_EFI_VARIABLE_AUTHORITY digest.
"""

from __future__ import annotations

import struct
import uuid
from typing import Final

from attestation.measure.errors import VmConfigError
from attestation.measure.events import (
    EV_EFI_HANDOFF_TABLES2,
    EV_EFI_PLATFORM_FIRMWARE_BLOB2,
    EV_EFI_VARIABLE_AUTHORITY,
    EV_EFI_VARIABLE_BOOT,
    EV_EFI_VARIABLE_DRIVER_CONFIG,
    EV_PLATFORM_CONFIG_FLAGS,
    EV_SEPARATOR,
    SEPARATOR_DATA,
    MeasuredEvent,
    sha384,
)
from attestation.measure.tdvf import Tdvf
from attestation.measure.vmconfig import OvmfVariant, VmConfig

EFI_GLOBAL_VARIABLE: Final = uuid.UUID("8be4df61-93ca-11d2-aa0d-00e098032b8c")
EFI_IMAGE_SECURITY_DATABASE: Final = uuid.UUID("d719b2cb-3d3a-4596-a3bc-dad00e67656f")
# OvmfPkg build constants: the DXE firmware volume and the boot applications inside it.
OVMF_DXE_FV: Final = uuid.UUID("7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1")
UI_APP_FILE: Final = uuid.UUID("462caa21-7614-4503-836e-8ab6f4662331")
BOOT_MANAGER_MENU_APP_FILE: Final = uuid.UUID("eec25bdc-67f2-4d95-b1d5-f81b2039d11d")
LOAD_OPTION_ACTIVE: Final = 0x001
LOAD_OPTION_HIDDEN: Final = 0x008
LOAD_OPTION_CATEGORY_APP: Final = 0x100
# QEMU's fw_cfg "bootorder" for -kernel boot on q35 (fw_cfg DMA): the linuxboot option ROM.
QEMU_KERNEL_BOOTORDER: Final = b"/rom@genroms/linuxboot_dma.bin\0"
_END_OF_DEVICE_PATH: Final = bytes((0x7F, 0xFF, 0x04, 0x00))


def variable_digest(vendor: uuid.UUID, name: str, data: bytes = b"") -> bytes:
    """Digest of an EV_EFI_VARIABLE_DRIVER_CONFIG event (the UEFI_VARIABLE_DATA record)."""
    record = vendor.bytes_le + struct.pack("<QQ", len(name), len(data)) + name.encode("utf-16-le")
    return sha384(record + data)


def load_option(attributes: int, description: str, fv: uuid.UUID, file: uuid.UUID) -> bytes:
    """An EFI_LOAD_OPTION whose device path is ``Fv(fv)/FvFile(file)``."""
    path = (
        struct.pack("<BBH", 4, 7, 20)
        + fv.bytes_le
        + struct.pack("<BBH", 4, 6, 20)
        + file.bytes_le
        + _END_OF_DEVICE_PATH
    )
    return (
        struct.pack("<IH", attributes, len(path)) + (description + "\0").encode("utf-16-le") + path
    )


def rtmr0_events(tdvf: Tdvf, *, memory: int, config: VmConfig) -> list[MeasuredEvent]:
    """The RTMR0 event digests for ``tdvf`` booted with ``memory`` bytes under ``config``."""
    acpi = config.acpi
    head = [
        MeasuredEvent(0, "td-hob", sha384(tdvf.td_hob(memory)), EV_EFI_HANDOFF_TABLES2),
        MeasuredEvent(0, "cfv", tdvf.cfv_digest(), EV_EFI_PLATFORM_FIRMWARE_BLOB2),
    ]
    secure_boot = [
        MeasuredEvent(0, name, variable_digest(vendor, name), EV_EFI_VARIABLE_DRIVER_CONFIG)
        for vendor, name in (
            (EFI_GLOBAL_VARIABLE, "SecureBoot"),
            (EFI_GLOBAL_VARIABLE, "PK"),
            (EFI_GLOBAL_VARIABLE, "KEK"),
            (EFI_IMAGE_SECURITY_DATABASE, "db"),
            (EFI_IMAGE_SECURITY_DATABASE, "dbx"),
        )
    ]
    tables = [
        MeasuredEvent(0, "separator", sha384(SEPARATOR_DATA), EV_SEPARATOR),
        MeasuredEvent(0, "acpi-loader", acpi.loader, EV_PLATFORM_CONFIG_FLAGS),
        MeasuredEvent(0, "acpi-rsdp", acpi.rsdp, EV_PLATFORM_CONFIG_FLAGS),
        MeasuredEvent(0, "acpi-tables", acpi.tables, EV_PLATFORM_CONFIG_FLAGS),
    ]
    app = LOAD_OPTION_ACTIVE | LOAD_OPTION_CATEGORY_APP
    if config.ovmf_variant is OvmfVariant.PRE_202505:
        ui_app = load_option(app | LOAD_OPTION_HIDDEN, "UiApp", OVMF_DXE_FV, UI_APP_FILE)
        return [
            *head,
            *secure_boot,
            *tables,
            MeasuredEvent(0, "BootOrder", sha384(struct.pack("<H", 0)), EV_EFI_VARIABLE_BOOT),
            MeasuredEvent(0, "Boot0000", sha384(ui_app), EV_EFI_VARIABLE_BOOT),
        ]
    if config.variable_authority is None:
        raise VmConfigError(
            config.source,
            "edk2-stable202505 OVMF measures an EV_EFI_VARIABLE_AUTHORITY event: give its digest "
            "as 'variable_authority'",
        )
    menu = load_option(
        app | LOAD_OPTION_HIDDEN, "BootManagerMenuApp", OVMF_DXE_FV, BOOT_MANAGER_MENU_APP_FILE
    )
    setup = load_option(app, "EFI Firmware Setup", OVMF_DXE_FV, UI_APP_FILE)
    return [
        *head,
        MeasuredEvent(0, "fw_cfg BootMenu", sha384(struct.pack("<H", 0)), EV_PLATFORM_CONFIG_FLAGS),
        MeasuredEvent(
            0, "fw_cfg bootorder", sha384(QEMU_KERNEL_BOOTORDER), EV_PLATFORM_CONFIG_FLAGS
        ),
        *secure_boot,
        *tables,
        MeasuredEvent(
            0, "variable authority", config.variable_authority, EV_EFI_VARIABLE_AUTHORITY
        ),
        MeasuredEvent(0, "BootOrder", sha384(struct.pack("<HH", 0, 1)), EV_EFI_VARIABLE_BOOT),
        MeasuredEvent(0, "Boot0000", sha384(menu), EV_EFI_VARIABLE_BOOT),
        MeasuredEvent(0, "Boot0001", sha384(setup), EV_EFI_VARIABLE_BOOT),
    ]
