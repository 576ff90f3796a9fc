"""The catalog's rules: what it takes, what it refuses, what it reports."""

from __future__ import annotations

import msgspec
import pytest

from node.discovery import (
    AddTags,
    Catalog,
    DepartureReason,
    GracefulDeparture,
    LocalEntry,
    PeerDeparted,
    PeerDiscovered,
    PeerEntry,
    PeerUpdated,
    SignedPeerEntry,
    Verdict,
    encode_entry,
)
from node.discovery.entry import _SignedWire
from node.primitives import Digest, encode
from tests.discovery.conftest import NETWORK, NOW, key, signed_entry

TTL = 300_000


@pytest.fixture
def catalog() -> Catalog:
    return Catalog(NETWORK, key(0).peer_id, ttl_ms=TTL, max_drift_ms=50_000)


def test_new_peer_is_discovered_then_duplicate(catalog: Catalog) -> None:
    signed = signed_entry(1)
    outcome = catalog.insert(signed, NOW)
    assert outcome.verdict is Verdict.DISCOVERED
    assert outcome.event == PeerDiscovered(signed.entry)
    assert catalog.insert_encoded(signed.encode(), NOW).verdict is Verdict.DUPLICATE
    assert len(catalog) == 1 and key(1).peer_id in catalog
    assert catalog.get(key(1).peer_id) is not None


def test_other_networks_are_isolated(catalog: Catalog) -> None:
    outcome = catalog.insert(signed_entry(1, network=Digest.from_name("elsewhere")), NOW)
    assert outcome.verdict is Verdict.OTHER_NETWORK and not outcome.accepted
    assert len(catalog) == 0
    notice = GracefulDeparture.sign(key(1), Digest.from_name("elsewhere"), (NOW, NOW), NOW)
    assert catalog.depart(notice, NOW).verdict is Verdict.OTHER_NETWORK


def test_own_entry_is_not_catalogued(catalog: Catalog) -> None:
    assert catalog.insert(signed_entry(0), NOW).verdict is Verdict.LOCAL
    assert catalog.insert_hint(signed_entry(0).entry) is False


def test_stale_and_future_entries_are_refused(catalog: Catalog) -> None:
    assert catalog.insert(signed_entry(1, NOW - TTL), NOW).verdict is Verdict.STALE
    future = catalog.insert(signed_entry(2, NOW + 50_001), NOW)
    assert future.verdict is Verdict.FROM_FUTURE and "ahead" in future.reason
    assert catalog.insert(signed_entry(3, NOW + 50_000), NOW).accepted  # within the drift
    assert catalog.insert(signed_entry(4, NOW - TTL + 1), NOW).accepted


def test_unknown_protocol_version_is_refused(catalog: Catalog) -> None:
    entry = msgspec.structs.replace(signed_entry(1).entry, protocol=99)
    signed = SignedPeerEntry.sign(entry, key(1))
    assert catalog.insert(signed, NOW).verdict is Verdict.UNSUPPORTED_PROTOCOL


def test_newer_version_wins_and_a_replayed_older_one_does_not_roll_back(
    catalog: Catalog,
) -> None:
    local = LocalEntry(key(1), NETWORK, NOW)
    old = local.signed
    local.apply(AddTags(frozenset({Digest.from_name("matcher")})), NOW + 10)
    new = local.signed
    assert catalog.insert(old, NOW).verdict is Verdict.DISCOVERED
    updated = catalog.insert(new, NOW + 20)
    assert updated.verdict is Verdict.UPDATED
    assert updated.event == PeerUpdated(new.entry, old.entry)
    replay = catalog.insert_encoded(old.encode(), NOW + 30)
    assert replay.verdict is Verdict.OLDER
    held = catalog.signed(key(1).peer_id)
    assert held == new


def test_a_tampered_entry_never_evicts_the_good_one(catalog: Catalog) -> None:
    good = signed_entry(1)
    catalog.insert(good, NOW)
    forged = msgspec.structs.replace(good.entry, update_ms=NOW + 1_000, addrs=("6.6.6.6:1",))
    data = encode(_SignedWire(entry=encode_entry(forged), signature=good.signature))
    outcome = catalog.insert_encoded(data, NOW + 2_000)
    assert outcome.verdict is Verdict.INVALID
    assert "signature does not verify" in outcome.reason
    flipped = bytearray(good.encode())
    flipped[-1] ^= 0x80
    assert catalog.insert_encoded(bytes(flipped), NOW).verdict is Verdict.INVALID
    assert catalog.signed(key(1).peer_id) == good


def test_a_refresh_moves_the_ttl_without_an_event(catalog: Catalog) -> None:
    local = LocalEntry(key(1), NETWORK, NOW)
    catalog.insert(local.signed, NOW)
    refreshed = catalog.insert(local.refresh(NOW + 200_000), NOW + 200_000)
    assert refreshed.verdict is Verdict.REFRESHED and refreshed.event is None
    assert catalog.purge(NOW + TTL + 1) == []  # the first version would have expired here
    assert catalog.next_expiry() == NOW + 200_001 + TTL


def test_entries_expire_after_the_ttl(catalog: Catalog) -> None:
    first, second = signed_entry(1), signed_entry(2, NOW + 1_000)
    catalog.insert(first, NOW)
    catalog.insert(second, NOW)
    assert catalog.next_expiry() == NOW + TTL
    assert catalog.purge(NOW + TTL - 1) == []
    assert catalog.purge(NOW + TTL) == [PeerDeparted(first.entry, DepartureReason.EXPIRED)]
    assert catalog.peer_ids() == [key(2).peer_id]
    assert catalog.next_expiry() == NOW + 1_000 + TTL
    # Rediscovered when it re-announces.
    assert catalog.insert(signed_entry(1, NOW + TTL), NOW + TTL).verdict is Verdict.DISCOVERED


def test_hints_give_way_to_signed_entries(catalog: Catalog) -> None:
    hint = PeerEntry(
        protocol=1,
        network_id=NETWORK,
        peer_id=key(1).peer_id,
        start_ms=0,
        update_ms=0,
        addrs=("192.168.1.5:7400",),
    )
    assert catalog.insert_hint(hint)
    assert catalog.hint(key(1).peer_id) == hint
    assert catalog.addresses(key(1).peer_id) == ("192.168.1.5:7400",)
    assert key(1).peer_id not in catalog  # hints are not peers
    catalog.insert(signed_entry(1), NOW)
    assert catalog.hint(key(1).peer_id) is None
    assert catalog.addresses(key(1).peer_id) == ("10.0.0.1:7400",)
    assert not catalog.insert_hint(hint)  # the signed entry stays authoritative
    assert catalog.encoded_entries(NOW) == [signed_entry(1).encode()]  # only signed are synced
    other = msgspec.structs.replace(hint, peer_id=key(2).peer_id)
    assert catalog.insert_hint(other) and catalog.remove_hint(key(2).peer_id)


def test_graceful_departure_removes_the_peer_until_a_newer_entry(catalog: Catalog) -> None:
    local = LocalEntry(key(1), NETWORK, NOW)
    old = local.signed
    catalog.insert(old, NOW)
    notice = GracefulDeparture.sign(key(1), NETWORK, old.version, NOW + 5)
    outcome = catalog.depart(notice, NOW + 10)
    assert outcome.verdict is Verdict.DEPARTED
    assert outcome.event == PeerDeparted(old.entry, DepartureReason.GRACEFUL)
    assert key(1).peer_id not in catalog
    # A late copy of the departed version does not bring it back ...
    assert catalog.insert(old, NOW + 20).verdict is Verdict.WITHDRAWN
    assert catalog.holds(key(1).peer_id, old.version, departed=True)
    assert catalog.depart(notice, NOW + 20).verdict is Verdict.DUPLICATE
    # ... but the peer coming back with a newer version does.
    local.refresh(NOW + 30)
    assert catalog.insert(local.signed, NOW + 30).verdict is Verdict.DISCOVERED


def test_a_departure_older_than_the_entry_held_is_ignored(catalog: Catalog) -> None:
    local = LocalEntry(key(1), NETWORK, NOW)
    old_version = local.signed.version
    catalog.insert(local.refresh(NOW + 100), NOW + 100)
    notice = GracefulDeparture.sign(key(1), NETWORK, old_version, NOW + 100)
    assert catalog.depart(notice, NOW + 100).verdict is Verdict.OLDER
    assert key(1).peer_id in catalog


def test_departures_outside_the_drift_bound_are_refused(catalog: Catalog) -> None:
    catalog.insert(signed_entry(1), NOW)
    version = (NOW, NOW)
    old = GracefulDeparture.sign(key(1), NETWORK, version, NOW - 60_000)
    assert catalog.depart(old, NOW).verdict is Verdict.STALE
    ahead = GracefulDeparture.sign(key(1), NETWORK, version, NOW + 60_000)
    assert catalog.depart(ahead, NOW).verdict is Verdict.FROM_FUTURE
    assert key(1).peer_id in catalog


def test_departure_notices_are_forgotten_after_the_ttl(catalog: Catalog) -> None:
    notice = GracefulDeparture.sign(key(1), NETWORK, (NOW, NOW), NOW)
    assert catalog.depart(notice, NOW).verdict is Verdict.DEPARTED  # unknown peer: recorded
    assert catalog.departure(key(1).peer_id) == notice
    catalog.purge(NOW + TTL)
    assert catalog.departure(key(1).peer_id) is None
    assert catalog.next_expiry() is None


def test_rtt_estimates_and_the_max_rtt_filter(catalog: Catalog) -> None:
    for n in (1, 2, 3):
        catalog.insert(signed_entry(n), NOW)
    catalog.observe_rtt(key(1).peer_id, 20)
    catalog.observe_rtt(key(2).peer_id, 200)
    assert catalog.get(key(1).peer_id).rtt_ms == 20  # type: ignore[union-attr]
    near = catalog.peers(max_rtt_ms=100)
    assert [info.peer_id for info in near] == [key(1).peer_id]  # unmeasured peers excluded
    assert len(catalog.peers()) == 3
    snapshot = catalog.snapshot(max_rtt_ms=500)
    assert set(snapshot.peers) == {key(1).peer_id, key(2).peer_id}
    catalog.rtt_timed_out(key(2).peer_id)
    assert catalog.rtt(key(2).peer_id).rto_ms == 2 * 1000  # type: ignore[union-attr]


def test_snapshots_do_not_change_afterwards(catalog: Catalog) -> None:
    catalog.insert(signed_entry(1), NOW)
    snapshot = catalog.snapshot()
    catalog.insert(signed_entry(2), NOW)
    assert len(snapshot) == 1 and key(1).peer_id in snapshot
    assert [info.peer_id for info in snapshot] == [key(1).peer_id]
    with pytest.raises(TypeError):
        snapshot.peers[key(2).peer_id] = snapshot.peers[key(1).peer_id]  # type: ignore[index]
