"""Collateral files, validity windows and the disk cache (with an injected fetch: no network)."""

from __future__ import annotations

import json
from pathlib import Path

import dcap_qvl
import pytest

from attestation import Collateral, CollateralCache, CollateralError, fetch_collateral
from attestation.collateral import cache_key
from tests.attestation.vectors import (
    COLLATERAL_OUTDATED,
    COLLATERAL_V4,
    INSIDE_V4,
    QUOTE_V4,
    V4_NOT_AFTER,
    V4_NOT_BEFORE,
)

URL = "https://pccs.example/tdx/certification/v4"
DAY = 86400


def test_file_collateral_window_is_the_intersection_of_its_parts(tmp_path: Path) -> None:
    path = tmp_path / "collateral.json"
    path.write_text(COLLATERAL_V4)
    collateral = Collateral.from_file(path)
    # QE identity issued 10:32:27 (latest start); PCK CRL's nextUpdate 10:00:35 (earliest end).
    assert (collateral.not_before, collateral.not_after) == (V4_NOT_BEFORE, V4_NOT_AFTER)
    assert collateral.fmspc == "B0C06F000000"
    assert collateral.valid_at(INSIDE_V4) and not collateral.valid_at(V4_NOT_AFTER)
    again = Collateral.from_json(collateral.to_json())
    assert again == collateral
    assert Collateral.from_json(json.loads(COLLATERAL_V4)) == collateral


def test_bad_collateral_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(CollateralError, match="cannot read"):
        Collateral.from_file(tmp_path / "missing.json")
    path = tmp_path / "broken.json"
    path.write_text("{")
    with pytest.raises(CollateralError, match=r"broken\.json"):
        Collateral.from_file(path)
    doc = json.loads(COLLATERAL_V4)
    with pytest.raises(CollateralError, match="tcb_info"):
        Collateral.from_json({**doc, "tcb_info": json.dumps({"id": "TDX"})})
    with pytest.raises(CollateralError):
        Collateral.from_json(b"\xff\xfe")
    tcb = json.loads(doc["tcb_info"])
    tcb["nextUpdate"] = "next tuesday"
    with pytest.raises(CollateralError, match="nextUpdate"):
        Collateral.from_json({**doc, "tcb_info": json.dumps(tcb)})


def test_cache_key_is_fmspc_and_ca() -> None:
    assert cache_key(QUOTE_V4) == "B0C06F000000-platform"


class FakeFetch:
    """Stands in for dcap-qvl's PCCS client; serves scripted answers and counts calls."""

    def __init__(self, *answers: str | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, bytes]] = []

    async def __call__(self, url: str, quote: bytes) -> str:
        self.calls.append((url, quote))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_cache_fetches_once_and_serves_from_disk(tmp_path: Path) -> None:
    fetch = FakeFetch(COLLATERAL_V4)
    cache = CollateralCache(tmp_path, URL, fetch=fetch)
    first = await cache.get(QUOTE_V4, INSIDE_V4)
    assert first.fmspc == "B0C06F000000" and len(fetch.calls) == 1
    assert fetch.calls[0][0] == URL
    path = cache.path_for(QUOTE_V4)
    assert path.exists() and "B0C06F000000-platform" in path.name
    # A new cache object (a new process) reads the file instead of fetching.
    again = CollateralCache(tmp_path, URL, fetch=fetch)
    assert await again.get(QUOTE_V4, INSIDE_V4 + DAY) == first
    assert again.cached(QUOTE_V4, INSIDE_V4) == first
    assert len(fetch.calls) == 1


async def test_cache_refetches_after_next_update_and_within_the_margin(tmp_path: Path) -> None:
    fetch = FakeFetch(COLLATERAL_V4)
    cache = CollateralCache(tmp_path, URL, fetch=fetch, refresh_margin=3 * DAY)
    await cache.get(QUOTE_V4, INSIDE_V4)
    await cache.get(QUOTE_V4, V4_NOT_AFTER - 4 * DAY)
    assert len(fetch.calls) == 1
    await cache.get(QUOTE_V4, V4_NOT_AFTER - 2 * DAY)
    assert len(fetch.calls) == 2
    assert cache.cached(QUOTE_V4, V4_NOT_AFTER + 1) is None


async def test_failed_refresh_falls_back_to_a_still_valid_entry(tmp_path: Path) -> None:
    fetch = FakeFetch(COLLATERAL_V4, CollateralError("PCCS down"))
    cache = CollateralCache(tmp_path, URL, fetch=fetch, refresh_margin=10 * DAY)
    first = await cache.get(QUOTE_V4, INSIDE_V4)
    # Inside the refresh margin: the fetch fails, the entry is still valid, so it is served.
    assert await cache.get(QUOTE_V4, V4_NOT_AFTER - DAY) == first
    # Expired and the fetch fails: nothing to serve.
    with pytest.raises(CollateralError, match="PCCS down"):
        await cache.get(QUOTE_V4, V4_NOT_AFTER + DAY)


async def test_corrupt_entries_are_refetched_and_urls_do_not_share_entries(tmp_path: Path) -> None:
    fetch = FakeFetch(COLLATERAL_V4)
    cache = CollateralCache(tmp_path, URL, fetch=fetch)
    cache.directory.mkdir(exist_ok=True)
    cache.path_for(QUOTE_V4).write_text("garbage")
    await cache.get(QUOTE_V4, INSIDE_V4)
    assert len(fetch.calls) == 1
    other = CollateralCache(tmp_path, "https://other.example", fetch=fetch)
    assert other.path_for(QUOTE_V4) != cache.path_for(QUOTE_V4)
    await other.get(QUOTE_V4, INSIDE_V4)
    assert len(fetch.calls) == 2


async def test_fetched_garbage_is_a_collateral_error(tmp_path: Path) -> None:
    cache = CollateralCache(tmp_path, URL, fetch=FakeFetch("not json"))
    with pytest.raises(CollateralError):
        await cache.get(QUOTE_V4, INSIDE_V4)
    assert not cache.path_for(QUOTE_V4).exists()


async def test_fetch_collateral_translates_dcap_qvl_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def refuse(url: str, quote: bytes) -> dcap_qvl.QuoteCollateralV3:
        raise ValueError(f"Failed to fetch {url}")

    monkeypatch.setattr(dcap_qvl, "get_collateral", refuse)
    with pytest.raises(CollateralError, match="Failed to fetch"):
        await fetch_collateral(URL, QUOTE_V4)

    async def serve(url: str, quote: bytes) -> dcap_qvl.QuoteCollateralV3:
        return dcap_qvl.QuoteCollateralV3.from_json(COLLATERAL_OUTDATED)

    monkeypatch.setattr(dcap_qvl, "get_collateral", serve)
    assert (await fetch_collateral(URL, QUOTE_V4)).fmspc == "90C06F000000"
