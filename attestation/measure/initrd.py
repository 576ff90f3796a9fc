"""A completeness check for initrds, so a truncated download is refused, not measured.

An initrd is a sequence of segments: uncompressed cpio (newc) archives, each ending with a
``TRAILER!!!`` entry, and compressed cpio streams (gzip, xz, lzma, zstd, lz4), optionally
separated by zero padding. cpio, gzip and xz/lzma segments are checked to their end; a zstd or
lz4 segment (no decoder in the standard library) ends the check and is accepted as is.
"""

from __future__ import annotations

import lzma
import zlib
from typing import Final

from attestation.measure.errors import InputFileError

_CPIO_MAGICS: Final = (b"070701", b"070702")
_CPIO_HEADER: Final = 110
_GZIP: Final = b"\x1f\x8b"
_XZ: Final = b"\xfd7zXZ\x00"
_LZMA: Final = b"\x5d\x00\x00"
_UNCHECKED: Final = {
    b"\x28\xb5\x2f\xfd": "zstd",
    b"\x02\x21\x4c\x18": "lz4",
    b"\x04\x22\x4d\x18": "lz4",
}
_CHUNK: Final = 1 << 22


def check_initrd(data: bytes, source: str = "initrd") -> None:
    """Raise ``InputFileError`` naming ``source`` if ``data`` is empty or ends mid-segment."""
    if not data:
        raise InputFileError(source, "initrd is empty")
    position = 0
    while position < len(data):
        if data[position] == 0:
            position = _skip_zeros(data, position)
            continue
        head = data[position : position + 6]
        if head in _CPIO_MAGICS:
            position = _cpio_end(data, position, source)
        elif head.startswith(_GZIP):
            position = _stream_end(data, position, "gzip", source)
        elif head.startswith(_XZ) or head.startswith(_LZMA):
            position = _stream_end(data, position, "xz/lzma", source)
        elif any(head.startswith(magic) for magic in _UNCHECKED):
            return
        elif position == 0:
            raise InputFileError(
                source, "not an initrd: no cpio, gzip, xz, lzma, zstd or lz4 signature at offset 0"
            )
        else:
            raise InputFileError(
                source, f"unrecognised data at offset {position:#x} after a complete segment"
            )


def _skip_zeros(data: bytes, position: int) -> int:
    stripped = data[position:].lstrip(b"\0")
    return len(data) - len(stripped)


def _cpio_end(data: bytes, position: int, source: str) -> int:
    while True:
        header = data[position : position + _CPIO_HEADER]
        if len(header) < _CPIO_HEADER or header[:6] not in _CPIO_MAGICS:
            raise InputFileError(
                source,
                f"truncated: cpio archive ends at offset {position:#x} before its TRAILER!!! entry",
            )
        try:
            file_size = int(header[54:62], 16)
            name_size = int(header[94:102], 16)
        except ValueError:
            raise InputFileError(source, f"corrupt cpio header at offset {position:#x}") from None
        name_end = position + _CPIO_HEADER + name_size
        name = data[position + _CPIO_HEADER : name_end - 1]
        data_start = (name_end + 3) & ~3
        next_entry = (data_start + file_size + 3) & ~3
        if data_start + file_size > len(data):
            raise InputFileError(
                source,
                f"truncated: cpio entry {name.decode(errors='replace')!r} runs past the end "
                "of the file",
            )
        if name == b"TRAILER!!!":
            return min(next_entry, len(data))
        position = next_entry


def _stream_end(data: bytes, position: int, kind: str, source: str) -> int:
    """Offset just past the compressed stream at ``position`` (output is discarded)."""
    view = memoryview(data)[position:]
    try:
        unused = _gzip_unused(view) if kind == "gzip" else _lzma_unused(view)
    except (zlib.error, lzma.LZMAError) as exc:
        raise InputFileError(
            source, f"corrupt {kind} stream at offset {position:#x}: {exc}"
        ) from None
    if unused is None:
        raise InputFileError(
            source,
            f"truncated: the {kind} stream starting at offset {position:#x} ends before its "
            "end marker",
        )
    return len(data) - unused


def _gzip_unused(view: memoryview) -> int | None:
    decoder = zlib.decompressobj(wbits=31)
    for start in range(0, len(view), _CHUNK):
        pending: bytes | memoryview = view[start : start + _CHUNK]
        while pending and not decoder.eof:
            decoder.decompress(pending, _CHUNK)
            pending = decoder.unconsumed_tail
        if decoder.eof:
            return len(decoder.unused_data) + len(view) - min(start + _CHUNK, len(view))
    return None


def _lzma_unused(view: memoryview) -> int | None:
    decoder = lzma.LZMADecompressor()
    for start in range(0, len(view), _CHUNK):
        decoder.decompress(view[start : start + _CHUNK], _CHUNK)
        while not decoder.needs_input and not decoder.eof:
            decoder.decompress(b"", _CHUNK)
        if decoder.eof:
            return len(decoder.unused_data) + len(view) - min(start + _CHUNK, len(view))
    return None
