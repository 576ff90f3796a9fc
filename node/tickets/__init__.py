"""Tickets: credentials peers carry in their entries, and the validators that admit them.

Streams, groups and collections accept ``require_ticket=`` validators; a peer is admitted when
``validate_all`` passes and stays admitted until the returned expiry (``ExpiryTimer``) or until
its entry changes and re-validation fails.
"""

from node.tickets.errors import (
    MintError,
    TicketConfigError,
    TicketError,
    TicketRejected,
    TicketsRejected,
)
from node.tickets.jwt_ticket import JWT_CLASS, JwtTicketBuilder, JwtTicketValidator
from node.tickets.timer import ExpiryTimer
from node.tickets.validation import (
    At,
    Expiry,
    Never,
    TicketSubject,
    TicketValidator,
    earliest,
    latest,
    validate_all,
    validate_one,
)

__all__ = [
    "JWT_CLASS",
    "At",
    "Expiry",
    "ExpiryTimer",
    "JwtTicketBuilder",
    "JwtTicketValidator",
    "MintError",
    "Never",
    "TicketConfigError",
    "TicketError",
    "TicketRejected",
    "TicketSubject",
    "TicketValidator",
    "TicketsRejected",
    "earliest",
    "latest",
    "validate_all",
    "validate_one",
]
