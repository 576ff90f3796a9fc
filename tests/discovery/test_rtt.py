"""RTT estimation against the arithmetic of RFC 6298, section 2 and 5.5."""

from __future__ import annotations

import pytest

from node.discovery import RttEstimator


def test_before_any_sample_rto_is_one_second() -> None:
    estimator = RttEstimator()
    assert estimator.srtt_ms is None and estimator.rttvar_ms is None
    assert estimator.rto_ms == 1000


def test_first_sample_sets_srtt_and_half_rttvar() -> None:
    # 2.2: SRTT <- R, RTTVAR <- R/2, RTO <- SRTT + max(G, K*RTTVAR)
    estimator = RttEstimator(min_rto_ms=0, initial_rto_ms=0)
    estimator.observe(100)
    assert (estimator.srtt_ms, estimator.rttvar_ms, estimator.rto_ms) == (100, 50, 300)


def test_later_samples_update_rttvar_before_srtt() -> None:
    # 2.3 with alpha = 1/8, beta = 1/4, computed by hand:
    #   R'=200: RTTVAR = 3/4*50 + 1/4*|100-200| = 62.5; SRTT = 7/8*100 + 1/8*200 = 112.5
    #           RTO = 112.5 + 4*62.5 = 362.5
    #   R'=50:  RTTVAR = 3/4*62.5 + 1/4*|112.5-50| = 62.5; SRTT = 7/8*112.5 + 1/8*50 = 104.6875
    #           RTO = 104.6875 + 250 = 354.6875
    estimator = RttEstimator(min_rto_ms=0, initial_rto_ms=0)
    for sample in (100, 200):
        estimator.observe(sample)
    assert (estimator.srtt_ms, estimator.rttvar_ms, estimator.rto_ms) == (112.5, 62.5, 362.5)
    estimator.observe(50)
    assert estimator.rttvar_ms == 62.5
    assert estimator.srtt_ms == pytest.approx(104.6875)
    assert estimator.rto_ms == pytest.approx(354.6875)
    assert estimator.samples == 3


def test_clock_granularity_bounds_the_variance_term() -> None:
    estimator = RttEstimator(min_rto_ms=0, initial_rto_ms=0, granularity_ms=10)
    for _ in range(40):
        estimator.observe(20)  # RTTVAR decays towards 0, G takes over
    assert estimator.rto_ms == pytest.approx(30, abs=0.01)


def test_rto_is_clamped_to_one_second_and_the_maximum() -> None:
    estimator = RttEstimator()
    estimator.observe(10)
    assert estimator.rto_ms == 1000  # 2.4: rounded up to 1 s
    estimator = RttEstimator(max_rto_ms=60_000)
    estimator.observe(50_000)
    assert estimator.rto_ms == 60_000


def test_backoff_doubles_up_to_the_maximum() -> None:
    estimator = RttEstimator()
    estimator.observe(400)  # RTO = 400 + 800 = 1200
    estimator.backoff()
    assert estimator.rto_ms == 2400
    for _ in range(10):
        estimator.backoff()
    assert estimator.rto_ms == 60_000


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        RttEstimator().observe(-1)
    with pytest.raises(ValueError, match="min_rto_ms"):
        RttEstimator(min_rto_ms=5000, initial_rto_ms=1000)
