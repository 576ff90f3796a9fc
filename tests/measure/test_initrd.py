"""The initrd completeness check: whole archives pass, cut ones are refused by name."""

from __future__ import annotations

import gzip
import lzma

import pytest

from attestation.measure import InputFileError, check_initrd
from tests.measure.builders import cpio_newc

ARCHIVE = cpio_newc([("init", b"#!/bin/sh\n" * 50), ("etc/hostname", b"mosaik\n")])


@pytest.mark.parametrize(
    "initrd",
    [
        ARCHIVE,
        gzip.compress(ARCHIVE, mtime=0),
        lzma.compress(ARCHIVE, format=lzma.FORMAT_XZ),
        ARCHIVE + gzip.compress(ARCHIVE, mtime=0) + bytes(512),  # early cpio + compressed main
        gzip.compress(ARCHIVE, mtime=0) + gzip.compress(ARCHIVE, mtime=0),
        b"\x28\xb5\x2f\xfd" + bytes(100),  # zstd: accepted unchecked
    ],
    ids=["cpio", "gzip", "xz", "cpio+gzip+padding", "two-gzip", "zstd"],
)
def test_complete_initrds_pass(initrd: bytes) -> None:
    check_initrd(initrd, "initrd.img")


@pytest.mark.parametrize(
    ("initrd", "message"),
    [
        (b"", "initrd is empty"),
        (ARCHIVE[:-40], "truncated: cpio archive ends at offset"),
        (ARCHIVE[:200], r"truncated: cpio entry 'init' runs past the end"),
        (
            gzip.compress(ARCHIVE, mtime=0)[:-12],
            "truncated: the gzip stream starting at offset 0x0",
        ),
        (lzma.compress(ARCHIVE)[:-30], "truncated: the xz/lzma stream"),
        (b"hello world", "not an initrd"),
        (ARCHIVE + b"junk", "unrecognised data at offset"),
    ],
)
def test_incomplete_initrds_are_refused(initrd: bytes, message: str) -> None:
    with pytest.raises(InputFileError, match=message) as caught:
        check_initrd(initrd, "initrd.img")
    assert str(caught.value).startswith("initrd.img: ")
