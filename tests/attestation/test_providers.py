"""The configfs-tsm provider against a temporary directory that emulates the kernel's tsm
report entries (real files, real mkdir/rmdir; the fixture adds the kernel's side effects)."""

from __future__ import annotations

import errno
import threading
from pathlib import Path

import pytest

from attestation import (
    ConfigfsOps,
    ConfigfsTsmProvider,
    InvalidArgument,
    ProviderError,
    ProviderUnavailable,
    SimulatedProvider,
    detect_provider,
    parse_quote,
)


class FakeTsm(ConfigfsOps):
    """A fake /sys/kernel/config/tsm/report: mkdir populates an entry's attributes, a write to
    ``inblob`` bumps ``generation`` and produces ``outblob``. Knobs inject EBUSY, concurrent
    writers (generation jumps) and a foreign provider."""

    def __init__(self, root: Path, provider: str = "tdx_guest") -> None:
        self.root = root
        self.provider = provider
        self.busy_writes = 0
        self.racing_writes = 0
        self.race_during_read = 0
        self.live_entries = 0
        self.max_live_entries = 0
        self.lock = threading.Lock()

    def mkdir(self, path: Path) -> None:
        super().mkdir(path)
        with self.lock:
            self.live_entries += 1
            self.max_live_entries = max(self.max_live_entries, self.live_entries)
        (path / "provider").write_text(self.provider + "\n")
        (path / "generation").write_text("0\n")
        (path / "inblob").write_bytes(b"")
        (path / "outblob").write_bytes(b"")

    def rmdir(self, path: Path) -> None:
        for child in path.iterdir():  # configfs drops attributes with the entry
            child.unlink()
        super().rmdir(path)
        with self.lock:
            self.live_entries -= 1

    def write(self, path: Path, data: bytes) -> None:
        if path.name == "inblob":
            if self.busy_writes:
                self.busy_writes -= 1
                raise OSError(errno.EBUSY, "Device or resource busy", str(path))
            if len(data) != 64:
                raise OSError(errno.EINVAL, "inblob takes 64 bytes", str(path))
            self._bump(path.parent, 2 if self.racing_writes else 1)
            self.racing_writes = max(0, self.racing_writes - 1)
            (path.parent / "outblob").write_bytes(b"QUOTE:" + data)
        super().write(path, data)

    def read(self, path: Path) -> bytes:
        data = super().read(path)
        if path.name == "outblob" and self.race_during_read:
            self.race_during_read -= 1
            self._bump(path.parent, 1)  # another writer slipped in while we read
        return data

    @staticmethod
    def _bump(entry: Path, by: int) -> None:
        generation = entry / "generation"
        generation.write_text(f"{int(generation.read_text()) + by}\n")


REPORT_DATA = bytes(range(64))


@pytest.fixture
def tsm(tmp_path: Path) -> FakeTsm:
    root = tmp_path / "tsm" / "report"
    root.mkdir(parents=True)
    return FakeTsm(root)


def provider(
    tsm: FakeTsm, sleeps: list[float] | None = None, attempts: int = 6
) -> ConfigfsTsmProvider:
    record = sleeps if sleeps is not None else []
    return ConfigfsTsmProvider(tsm.root, ops=tsm, attempts=attempts, sleep=record.append)


def test_quote_over_exactly_64_bytes_and_entry_removed(tsm: FakeTsm) -> None:
    assert provider(tsm).get_quote(REPORT_DATA) == b"QUOTE:" + REPORT_DATA
    assert list(tsm.root.iterdir()) == []
    for bad in (b"", bytes(63), bytes(65), "text"):
        with pytest.raises(InvalidArgument):
            provider(tsm).get_quote(bad)  # type: ignore[arg-type]


def test_foreign_provider_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "report"
    root.mkdir()
    fake = FakeTsm(root, provider="sev_guest")
    with pytest.raises(ProviderError, match="sev_guest"):
        provider(fake).get_quote(REPORT_DATA)
    assert list(root.iterdir()) == []


def test_ebusy_is_retried_with_exponential_backoff(tsm: FakeTsm) -> None:
    tsm.busy_writes = 2
    sleeps: list[float] = []
    assert provider(tsm, sleeps).get_quote(REPORT_DATA) == b"QUOTE:" + REPORT_DATA
    assert sleeps == [0.02, 0.04]
    assert list(tsm.root.iterdir()) == []


def test_retries_are_bounded(tsm: FakeTsm) -> None:
    tsm.busy_writes = 100
    sleeps: list[float] = []
    with pytest.raises(ProviderError, match="gave up after 3 attempts"):
        provider(tsm, sleeps, attempts=3).get_quote(REPORT_DATA)
    assert len(sleeps) == 2
    assert list(tsm.root.iterdir()) == []


def test_generation_jump_across_the_write_is_retried(tsm: FakeTsm) -> None:
    tsm.racing_writes = 1
    sleeps: list[float] = []
    assert provider(tsm, sleeps).get_quote(REPORT_DATA) == b"QUOTE:" + REPORT_DATA
    assert len(sleeps) == 1


def test_generation_change_during_the_read_is_retried(tsm: FakeTsm) -> None:
    tsm.race_during_read = 2
    sleeps: list[float] = []
    assert provider(tsm, sleeps).get_quote(REPORT_DATA) == b"QUOTE:" + REPORT_DATA
    assert len(sleeps) == 2


def test_other_os_errors_are_provider_errors(tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    with pytest.raises(ProviderError):
        ConfigfsTsmProvider(missing).get_quote(REPORT_DATA)


def test_concurrent_callers_are_serialised(tsm: FakeTsm) -> None:
    shared = provider(tsm)
    results: list[bytes] = []

    def call(i: int) -> None:
        results.append(shared.get_quote(bytes([i]) * 64))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == sorted(b"QUOTE:" + bytes([i]) * 64 for i in range(8))
    assert tsm.max_live_entries == 1


def test_detect_provider(tmp_path: Path, tsm: FakeTsm) -> None:
    with pytest.raises(ProviderUnavailable, match="SIMULATED"):
        detect_provider(tsm_root=tmp_path / "no-configfs")
    found = detect_provider(tsm_root=tsm.root)
    assert isinstance(found, ConfigfsTsmProvider) and found.simulated is False
    simulated = detect_provider(tmp_path / "sim-state", tsm_root=tsm.root)
    assert isinstance(simulated, SimulatedProvider) and simulated.simulated is True
    quote = parse_quote(simulated.get_quote(REPORT_DATA))
    assert quote.td_report.report_data == REPORT_DATA
    # The state directory keeps the platform's keys: the same root CA next time.
    reopened = SimulatedProvider.open(tmp_path / "sim-state")
    assert reopened.platform.root_ca_der == simulated.platform.root_ca_der
    with pytest.raises(InvalidArgument):
        simulated.get_quote(bytes(10))
