"""Round-trip time estimation as in RFC 6298 (Computing TCP's Retransmission Timer).

Pure arithmetic: the caller measures samples with its own clock and feeds them in.
"""

from __future__ import annotations

ALPHA = 1 / 8
BETA = 1 / 4
K = 4


class RttEstimator:
    """Smoothed RTT (SRTT), its variation (RTTVAR) and the retransmission timeout (RTO), in ms.

    Section 2 of RFC 6298: before any sample RTO is 1 s; the first sample R sets SRTT = R and
    RTTVAR = R/2; later samples update RTTVAR = (1-beta)*RTTVAR + beta*|SRTT-R| first, then
    SRTT = (1-alpha)*SRTT + alpha*R; RTO = SRTT + max(G, K*RTTVAR), clamped to
    [min_rto, max_rto] (the RFC's 1 s floor is the default). ``backoff`` doubles RTO after a
    timeout (section 5.5).
    """

    __slots__ = ("_granularity", "_max_rto", "_min_rto", "_rto", "_rttvar", "_samples", "_srtt")

    def __init__(
        self,
        *,
        granularity_ms: float = 1.0,
        min_rto_ms: float = 1000.0,
        max_rto_ms: float = 60_000.0,
        initial_rto_ms: float = 1000.0,
    ) -> None:
        if not 0 <= min_rto_ms <= initial_rto_ms <= max_rto_ms:
            raise ValueError("need 0 <= min_rto_ms <= initial_rto_ms <= max_rto_ms")
        self._granularity = granularity_ms
        self._min_rto = min_rto_ms
        self._max_rto = max_rto_ms
        self._rto = initial_rto_ms
        self._srtt: float | None = None
        self._rttvar: float | None = None
        self._samples = 0

    def observe(self, sample_ms: float) -> None:
        """Take one RTT measurement (ms, not negative)."""
        if sample_ms < 0:
            raise ValueError(f"an RTT sample cannot be negative ({sample_ms} ms)")
        if self._srtt is None or self._rttvar is None:
            self._srtt = sample_ms
            self._rttvar = sample_ms / 2
        else:
            self._rttvar = (1 - BETA) * self._rttvar + BETA * abs(self._srtt - sample_ms)
            self._srtt = (1 - ALPHA) * self._srtt + ALPHA * sample_ms
        self._samples += 1
        self._rto = self._clamp(self._srtt + max(self._granularity, K * self._rttvar))

    def backoff(self) -> None:
        """A probe timed out: double RTO up to its maximum."""
        self._rto = self._clamp(2 * self._rto)

    def _clamp(self, rto: float) -> float:
        return min(max(rto, self._min_rto), self._max_rto)

    @property
    def srtt_ms(self) -> float | None:
        return self._srtt

    @property
    def rttvar_ms(self) -> float | None:
        return self._rttvar

    @property
    def rto_ms(self) -> float:
        return self._rto

    @property
    def samples(self) -> int:
        return self._samples

    def __repr__(self) -> str:
        return f"RttEstimator(srtt={self._srtt}, rttvar={self._rttvar}, rto={self._rto})"
