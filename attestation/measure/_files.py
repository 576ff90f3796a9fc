"""Reading measurement inputs, with OS errors turned into ``InputFileError``."""

from __future__ import annotations

from pathlib import Path

from attestation.measure.errors import InputFileError


def read_input(path: str | Path, role: str) -> bytes:
    """The bytes of ``path``; ``role`` ("firmware", "kernel", ...) goes into error messages."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputFileError(str(path), f"{role} file not found") from None
    except IsADirectoryError:
        raise InputFileError(str(path), f"{role} path is a directory, not a file") from None
    except OSError as exc:
        raise InputFileError(str(path), f"cannot read {role} file: {exc.strerror}") from None
    if not data:
        raise InputFileError(str(path), f"{role} file is empty")
    return data
