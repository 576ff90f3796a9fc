"""Tickets: credentials peers carry in their entries, and the validators that admit them.

Streams, groups and collections accept ``require_ticket=`` validators; a peer is admitted when
``validate_all`` passes and stays admitted until the returned expiry (``ExpiryTimer``) or until
its entry changes and re-validation fails.

The validators' core (``validation``, ``gate``, ``timer``, errors) loads eagerly; the JWT and
TDX tickets and ticket files (PyJWT, attestation, x509) resolve on first use.
"""

import typing

from node._lazy import lazy as _lazy
from node.tickets.errors import (
    MintError,
    QuoteRejected,
    TicketConfigError,
    TicketError,
    TicketRejected,
    TicketsRejected,
)
from node.tickets.gate import TicketGate
from node.tickets.timer import ExpiryTimer
from node.tickets.validation import (
    At,
    Expiry,
    Never,
    RequireTicket,
    TicketSubject,
    TicketValidator,
    as_validators,
    earliest,
    latest,
    validate_all,
    validate_one,
)

if typing.TYPE_CHECKING:
    from node.tickets.describe import describe_ticket
    from node.tickets.jwt_ticket import JWT_CLASS, JwtTicketBuilder, JwtTicketValidator
    from node.tickets.tdx_ticket import (
        MAX_TICKET_SIZE,
        TDX_CLASS,
        QuoteProvider,
        TdxTicketData,
        TdxTicketValidator,
        decode_tdx_ticket,
        encode_tdx_ticket,
        mint_tdx_ticket,
        tdx_report_data,
    )
    from node.tickets.ticket_file import TICKET_FILE_FORMAT, dump_ticket, load_ticket
else:
    __getattr__, __dir__ = _lazy(
        __name__,
        {
            "node.tickets.describe": ("describe_ticket",),
            "node.tickets.jwt_ticket": ("JWT_CLASS", "JwtTicketBuilder", "JwtTicketValidator"),
            "node.tickets.tdx_ticket": (
                "MAX_TICKET_SIZE",
                "TDX_CLASS",
                "QuoteProvider",
                "TdxTicketData",
                "TdxTicketValidator",
                "decode_tdx_ticket",
                "encode_tdx_ticket",
                "mint_tdx_ticket",
                "tdx_report_data",
            ),
            "node.tickets.ticket_file": ("TICKET_FILE_FORMAT", "dump_ticket", "load_ticket"),
        },
    )

__all__ = [
    "JWT_CLASS",
    "MAX_TICKET_SIZE",
    "TDX_CLASS",
    "TICKET_FILE_FORMAT",
    "At",
    "Expiry",
    "ExpiryTimer",
    "JwtTicketBuilder",
    "JwtTicketValidator",
    "MintError",
    "Never",
    "QuoteProvider",
    "QuoteRejected",
    "RequireTicket",
    "TicketConfigError",
    "TicketError",
    "TicketGate",
    "TicketRejected",
    "TicketSubject",
    "TicketValidator",
    "TdxTicketData",
    "TdxTicketValidator",
    "TicketsRejected",
    "as_validators",
    "decode_tdx_ticket",
    "describe_ticket",
    "dump_ticket",
    "earliest",
    "encode_tdx_ticket",
    "latest",
    "load_ticket",
    "mint_tdx_ticket",
    "tdx_report_data",
    "validate_all",
    "validate_one",
]
