"""Offline measurement time: MRTD + RTMR0-2 for OVMF.fd, a kernel and an initrd.

Times ``measure()`` end to end (file reads, sha256 of every input, initrd completeness check,
all registers) and each register's part on its own; prints the median of several runs.
Without --kernel/--initrd it uses the newest /boot/vmlinuz-* (else a synthetic 8 MiB bzImage)
and a synthetic gzip-compressed cpio initrd of --initrd-mib MiB.

    .venv/bin/python bench/measure.py [--kernel K] [--initrd I] [--runs N]
"""

from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from attestation.measure import (
    PageOrdering,
    Tdvf,
    check_initrd,
    direct_boot_events,
    load_vm_config,
    measure,
    rtmr0_events,
)
from tests.measure.builders import build_bzimage, cpio_newc

OVMF = Path("/usr/share/ovmf/OVMF.fd")
VM_CONFIG = Path(__file__).resolve().parent.parent / "tests/data/dstack_tdx-lite-getquote.json"
MIB = 1 << 20


def median_ms(call: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def synthetic_initrd(size_mib: int) -> bytes:
    # Half-compressible content, like a real initramfs (binaries + text), deterministic.
    block = hashlib.shake_256(b"initrd").digest(MIB // 2) + b"mosaik " * (MIB // 14)
    files = [(f"usr/lib/blob{i}", block) for i in range(size_mib)]
    return gzip.compress(cpio_newc(files), compresslevel=6, mtime=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernel", type=Path)
    parser.add_argument("--initrd", type=Path)
    parser.add_argument("--initrd-mib", type=int, default=64, help="uncompressed synthetic size")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not OVMF.exists():
        sys.exit(f"{OVMF} is missing (Debian package 'ovmf')")
    with tempfile.TemporaryDirectory() as scratch:
        kernel, kernel_kind = args.kernel, "given"
        if kernel is None:
            found = sorted(glob.glob("/boot/vmlinuz-*"))
            if found:
                kernel, kernel_kind = Path(found[-1]), "from /boot"
            else:
                kernel, kernel_kind = Path(scratch, "vmlinuz"), "synthetic bzImage"
                kernel.write_bytes(build_bzimage(hashlib.shake_256(b"k").digest(8 * MIB)))
        initrd, initrd_kind = args.initrd, "given"
        if initrd is None:
            initrd, initrd_kind = Path(scratch, "initrd.img"), "synthetic gzip cpio"
            initrd.write_bytes(synthetic_initrd(args.initrd_mib))
        run(kernel, kernel_kind, initrd, initrd_kind, args.runs)


def run(kernel: Path, kernel_kind: str, initrd: Path, initrd_kind: str, runs: int) -> None:
    firmware_bytes, kernel_bytes, initrd_bytes = (p.read_bytes() for p in (OVMF, kernel, initrd))
    print(f"firmware  {OVMF} ({len(firmware_bytes) / MIB:.1f} MiB)")
    print(f"kernel    {kernel} ({len(kernel_bytes) / MIB:.1f} MiB, {kernel_kind})")
    print(f"initrd    {initrd} ({len(initrd_bytes) / MIB:.1f} MiB, {initrd_kind})")
    print(f"median of {runs} runs\n")
    config = load_vm_config(VM_CONFIG)
    tdvf = Tdvf.parse(firmware_bytes)

    def all_registers() -> object:
        return measure(
            firmware=OVMF,
            kernel=kernel,
            initrd=initrd,
            cmdline="console=ttyS0 mosaik.network=demo",
            memory="2G",
            cpus=2,
            qemu_version="8.2.2",
            vm_config=VM_CONFIG,
        )

    parts = {
        "MRTD (one ordering)": lambda: tdvf.mrtd(PageOrdering.SINGLE_PASS),
        "RTMR0 (TD HOB, CFV, variables)": lambda: rtmr0_events(tdvf, memory=2 << 30, config=config),
        "RTMR1+RTMR2 (patch, Authenticode, initrd SHA-384)": lambda: direct_boot_events(
            kernel_bytes,
            initrd=initrd_bytes,
            cmdline="console=ttyS0",
            memory=2 << 30,
            patch_header=True,
        ),
        "initrd completeness check": lambda: check_initrd(initrd_bytes),
        "sha256 of every input": lambda: [
            hashlib.sha256(b).digest() for b in (firmware_bytes, kernel_bytes, initrd_bytes)
        ],
    }
    total = median_ms(all_registers, runs)
    print(f"{'measure(): all registers, end to end':<52} {total:8.1f} ms")
    for name, call in parts.items():
        print(f"  {name:<50} {median_ms(call, runs):8.1f} ms")


if __name__ == "__main__":
    main()
