"""Errors of the ticket subsystem.

    MosaikError
    └── TicketError              base of every ticket error
        ├── TicketRejected       a ticket failed a named check (the peer's fault)
        │   ├── TicketsRejected  validate_all: some validator found no acceptable ticket;
        │   │                    carries every rejection that led there
        │   └── QuoteRejected    a TDX ticket's quote failed verification or policy;
        │                        ``rule`` is the attestation rule that failed
        ├── TicketConfigError    a validator or minter configured wrongly (our fault);
        │                        also a ConfigError
        └── MintError            a ticket could not be minted (the key or quote provider failed)

``TicketRejected.check`` names the check that failed ("format", "alg", "signature", "exp",
"binding", "quote", "policy", ...), so callers and logs can tell a forged ticket from an
expired one without parsing messages.
"""

from __future__ import annotations

from collections.abc import Sequence

from node.errors import ConfigError, MosaikError


class TicketError(MosaikError):
    """Base of every error the ticket subsystem raises."""


class TicketRejected(TicketError):
    """A ticket failed ``check``; ``detail`` says how."""

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(f"{check}: {detail}")
        self.check = check
        self.detail = detail


class TicketsRejected(TicketRejected):
    """At least one validator found no acceptable ticket among a peer's tickets.

    ``rejections`` holds one entry per ticket tried (or one "missing" entry per validator that
    found no ticket of its class); ``check`` joins their distinct checks.
    """

    def __init__(self, rejections: Sequence[TicketRejected]) -> None:
        detail = "; ".join(str(r) for r in rejections)
        # Each rejection already names its check: the message is theirs, not prefixed again.
        TicketError.__init__(self, detail)
        self.check = ",".join(dict.fromkeys(r.check for r in rejections))
        self.detail = detail
        self.rejections = tuple(rejections)


class QuoteRejected(TicketRejected):
    """A TDX quote that failed check "quote" (chain, TCB, collateral) or "policy".

    ``rule`` is the attestation package's name for the failed rule (``measurements.mrtd``,
    ``tcb_status``, ``signature_chain``, ...).
    """

    def __init__(self, check: str, rule: str, detail: str) -> None:
        super().__init__(check, f"{rule}: {detail}")
        self.rule = rule


class TicketConfigError(TicketError, ConfigError):
    """A validator or minter was given an invalid option; names the option."""


class MintError(TicketError):
    """A ticket could not be minted."""
