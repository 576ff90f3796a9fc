"""Quote providers: configfs-tsm in a real TDX guest, or the SIMULATED platform.

configfs-tsm (Linux >= 6.7, ``Documentation/ABI/testing/configfs-tsm``): create a report entry
under ``/sys/kernel/config/tsm/report``, check its ``provider`` is ``tdx_guest``, write exactly
64 bytes of report data to ``inblob``, read the quote from ``outblob``, remove the entry. The
entry's ``generation`` counts writes: it must advance by exactly one across our write and stay
put across our read, else another writer raced us and the quote may not be over our data.
Access is serialised (a thread lock plus ``flock`` on the report directory, for other
processes), and EBUSY/EAGAIN/a generation race is retried with bounded exponential backoff.

The filesystem calls go through `ConfigfsOps` so tests can run the real protocol against a
temporary directory that emulates the kernel's attribute files.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

from attestation.errors import InvalidArgument, ProviderError, ProviderUnavailable

if TYPE_CHECKING:
    from attestation.simulated import SimulatedPlatform

TSM_REPORT_ROOT: Final = Path("/sys/kernel/config/tsm/report")
REPORT_DATA_SIZE: Final = 64
_RETRYABLE: Final = frozenset({errno.EBUSY, errno.EAGAIN, errno.EINTR})

_locks_guard = threading.Lock()
_locks: dict[Path, threading.Lock] = {}
_entry_counter = itertools.count()


class QuoteProvider(Protocol):
    """Anything that turns 64 bytes of report data into a TDX quote."""

    def get_quote(self, report_data: bytes) -> bytes: ...


def check_report_data(report_data: bytes) -> bytes:
    """``report_data`` if it is exactly 64 bytes, else ``InvalidArgument``."""
    if not isinstance(report_data, bytes) or len(report_data) != REPORT_DATA_SIZE:
        size = len(report_data) if isinstance(report_data, bytes) else type(report_data).__name__
        raise InvalidArgument(f"report_data: expected exactly {REPORT_DATA_SIZE} bytes, got {size}")
    return report_data


class ConfigfsOps:
    """The filesystem calls the configfs-tsm protocol makes (whole-buffer reads and writes)."""

    def mkdir(self, path: Path) -> None:
        os.mkdir(path)

    def rmdir(self, path: Path) -> None:
        os.rmdir(path)

    def read(self, path: Path) -> bytes:
        with open(path, "rb", buffering=0) as attribute:
            return attribute.read()

    def write(self, path: Path, data: bytes) -> None:
        # configfs binary attributes take the blob in one write(2); a short write is an error.
        with open(path, "wb", buffering=0) as attribute:
            written = attribute.write(data)
        if written != len(data):
            raise OSError(errno.EIO, f"short write: {written} of {len(data)} bytes", str(path))


class _Retry(Exception):
    """A transient failure (EBUSY, a generation race): try again after a backoff."""


class ConfigfsTsmProvider:
    """Quotes from the kernel's configfs-tsm interface (a real TDX guest, Linux >= 6.7)."""

    name: Final = "configfs-tsm"
    simulated: Final = False

    def __init__(
        self,
        root: Path = TSM_REPORT_ROOT,
        *,
        ops: ConfigfsOps | None = None,
        attempts: int = 6,
        backoff: float = 0.02,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if attempts < 1:
            raise InvalidArgument("attempts: must be at least 1")
        self.root = Path(root)
        self._ops = ops or ConfigfsOps()
        self._attempts = attempts
        self._backoff = backoff
        self._sleep = sleep

    def get_quote(self, report_data: bytes) -> bytes:
        """A TDX quote over ``report_data`` (64 bytes) from the TDX module via the kernel."""
        check_report_data(report_data)
        with _lock_for(self.root), _DirectoryLock(self.root):
            reason = ""
            for attempt in range(self._attempts):
                if attempt:
                    self._sleep(self._backoff * 2 ** (attempt - 1))
                try:
                    return self._attempt(report_data)
                except _Retry as retry:
                    reason = str(retry)
        raise ProviderError(f"configfs-tsm: gave up after {self._attempts} attempts: {reason}")

    def _attempt(self, report_data: bytes) -> bytes:
        entry = self.root / f"mosaik-{os.getpid()}-{next(_entry_counter)}"
        with _os_errors(entry):
            self._ops.mkdir(entry)
        try:
            with _os_errors(entry / "provider"):
                provider = self._ops.read(entry / "provider").strip()
            if provider != b"tdx_guest":
                raise ProviderError(
                    f"configfs-tsm: provider is {provider.decode(errors='replace')!r}, "
                    "not tdx_guest (not a TDX guest?)"
                )
            before = self._generation(entry)
            with _os_errors(entry / "inblob"):
                self._ops.write(entry / "inblob", report_data)
            written = self._generation(entry)
            if written != before + 1:
                raise _Retry(f"generation went {before} -> {written} across our write")
            with _os_errors(entry / "outblob"):
                quote = self._ops.read(entry / "outblob")
            after = self._generation(entry)
            if after != written:
                raise _Retry(f"generation went {written} -> {after} while reading the quote")
        finally:
            try:
                self._ops.rmdir(entry)
            except OSError:
                pass  # the quote (or the real error) matters more than a leftover entry
        if not quote:
            raise ProviderError("configfs-tsm: outblob is empty")
        return quote

    def _generation(self, entry: Path) -> int:
        with _os_errors(entry / "generation"):
            text = self._ops.read(entry / "generation")
        try:
            return int(text.strip())
        except ValueError:
            raise ProviderError(f"configfs-tsm: generation {text[:32]!r} is not a number") from None


@contextmanager
def _os_errors(path: Path) -> Iterator[None]:
    """Translate OS errors: transient ones into `_Retry`, the rest into `ProviderError`."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _RETRYABLE:
            raise _Retry(f"{path.name}: {os.strerror(exc.errno or 0)}") from None
        raise ProviderError(f"configfs-tsm: {path}: {exc.strerror or exc}") from None


def _lock_for(root: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(root.resolve(), threading.Lock())


class _DirectoryLock:
    """``flock`` on the report directory: serialises quote requests across processes."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._fd = -1

    def __enter__(self) -> None:
        try:
            self._fd = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError as exc:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            raise ProviderUnavailable(f"configfs-tsm: cannot open {self._root}: {exc}") from None

    def __exit__(self, *_exc: object) -> None:
        os.close(self._fd)  # closing releases the flock
        self._fd = -1


class SimulatedProvider:
    """Quotes from the SIMULATED TDX platform: they prove nothing about real hardware."""

    name: Final = "simulated-tdx"
    simulated: Final = True

    def __init__(self, platform: SimulatedPlatform) -> None:
        self.platform = platform

    @classmethod
    def open(cls, state_dir: Path) -> SimulatedProvider:
        """The simulated platform whose keys live in ``state_dir`` (created on first use)."""
        from attestation.simulated import SimulatedPlatform

        return cls(SimulatedPlatform.open(state_dir))

    def get_quote(self, report_data: bytes) -> bytes:
        return self.platform.get_quote(check_report_data(report_data))


def detect_provider(
    simulate_dir: Path | None = None, *, tsm_root: Path = TSM_REPORT_ROOT
) -> ConfigfsTsmProvider | SimulatedProvider:
    """The quote provider to use here.

    Asking for simulation (``simulate_dir``, the simulated platform's state directory) always
    gets the SIMULATED platform, even on TDX hardware, so its quotes stay verifiable with the
    simulated root. Otherwise configfs-tsm when ``tsm_root`` exists, else
    ``ProviderUnavailable`` explaining what is missing.
    """
    if simulate_dir is not None:
        return SimulatedProvider.open(Path(simulate_dir))
    if Path(tsm_root).is_dir():
        return ConfigfsTsmProvider(Path(tsm_root))
    raise ProviderUnavailable(
        f"no configfs-tsm at {tsm_root}: quotes need a TDX guest with Linux >= 6.7 and configfs "
        "mounted (mount -t configfs none /sys/kernel/config); for development use the "
        "SIMULATED platform instead"
    )
