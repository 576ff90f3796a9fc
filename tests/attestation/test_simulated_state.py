"""The simulated platform's state directory: stable keys across runs, private files, errors."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dcap_qvl
import pytest

from attestation.simulated import SimulatedPlatform, SimulatedStateError

NOW = 1_750_000_000
REPORT_DATA = b"\x5a" * 64
KEY_FILES = ["root-ca.key", "pck-ca.key", "pck.key", "tcb-signing.key", "attestation.key"]


def test_reopening_yields_the_same_root_and_keys(tmp_path: Path) -> None:
    first = SimulatedPlatform.open(tmp_path / "state")
    again = SimulatedPlatform.open(tmp_path / "state")
    assert first.root_ca_der == again.root_ca_der
    assert first.pck_chain_pem == again.pck_chain_pem
    # Same attestation and PCK keys: signing is deterministic, so the quotes are identical.
    assert first.quote(REPORT_DATA) == again.quote(REPORT_DATA)
    collateral = dcap_qvl.QuoteCollateralV3.from_json(again.collateral_json(NOW))
    report = dcap_qvl.verify_with_root_ca(
        first.get_quote(REPORT_DATA), collateral, first.root_ca_der, NOW
    )
    assert report.status == "UpToDate"
    assert SimulatedPlatform.open(tmp_path / "other").root_ca_der != first.root_ca_der


def test_private_keys_are_0600_and_the_directory_says_simulated(tmp_path: Path) -> None:
    state = tmp_path / "state"
    SimulatedPlatform.open(state)
    for name in KEY_FILES:
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert "SIMULATED" in (state / "SIMULATED").read_text()
    assert not list(state.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_concurrent_first_opens_agree_on_one_platform(tmp_path: Path) -> None:
    with ThreadPoolExecutor(4) as pool:
        roots = set(pool.map(lambda _: SimulatedPlatform.open(tmp_path).root_ca_der, range(4)))
    assert len(roots) == 1


def test_a_half_created_directory_is_created_afresh(tmp_path: Path) -> None:
    SimulatedPlatform.open(tmp_path)
    (tmp_path / "SIMULATED").unlink()  # as if creation died before writing the marker
    (tmp_path / "pck.pem").unlink()
    assert SimulatedPlatform.open(tmp_path).pck_chain_pem


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda d: (d / "pck.key").unlink(), "pck.key"),
        (lambda d: (d / "tcb-signing.key").write_text("not a key"), "tcb-signing.key"),
        (lambda d: (d / "root-ca.pem").write_text("not a cert"), "root-ca.pem"),
        (lambda d: (d / "pck-ca.pem").write_bytes((d / "pck.pem").read_bytes()), "pck-ca.pem"),
    ],
)
def test_damaged_state_names_the_file(tmp_path: Path, damage: object, named: str) -> None:
    SimulatedPlatform.open(tmp_path)
    damage(tmp_path)  # type: ignore[operator]
    with pytest.raises(SimulatedStateError, match=named):
        SimulatedPlatform.open(tmp_path)


def test_unusable_directory_is_a_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SimulatedStateError, match="file"):
        SimulatedPlatform.open(blocker / "state")
