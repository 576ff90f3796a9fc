"""The ticket file: how a ticket travels outside a peer entry (files, pipes, env vars).

One line of JSON, the same for every ticket class::

    {"format": "mosaik-ticket/v1", "class": "jwt", "class_id": "<64 hex>", "data": "<base64>"}

``class_id`` and ``data`` are the ``Ticket`` exactly as peer entries carry it (``data`` in
standard base64 with padding: the compact JWT's ASCII bytes for JWT tickets, the compressed
quote record for TDX tickets). ``class`` is the readable name of ``class_id`` ("jwt", "tdx",
or "other" for classes this build does not know); a file whose ``class`` disagrees with its
``class_id`` is refused. Nothing in the file is trusted: validators check the ticket itself.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final, Literal

import msgspec

from node.primitives import Digest, Ticket
from node.tickets.errors import TicketRejected
from node.tickets.jwt_ticket import JWT_CLASS
from node.tickets.tdx_ticket import MAX_TICKET_SIZE, TDX_CLASS

TICKET_FILE_FORMAT: Final = "mosaik-ticket/v1"
MAX_TICKET_FILE_SIZE = 2 * MAX_TICKET_SIZE
"""Bound on a ticket file: base64 of the largest ticket data plus the JSON around it."""

CLASS_NAMES = {JWT_CLASS: "jwt", TDX_CLASS: "tdx"}
OTHER_CLASS = "other"


class _TicketFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: Literal["mosaik-ticket/v1"]
    class_: str = msgspec.field(name="class")
    class_id: str = ""
    data: str = ""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_TicketFile)


def class_name(class_id: Digest) -> str:
    """ "jwt", "tdx", or "other"."""
    return CLASS_NAMES.get(class_id, OTHER_CLASS)


def dump_ticket(ticket: Ticket) -> str:
    """The ticket file text (one line, newline-terminated)."""
    document = _TicketFile(
        format=TICKET_FILE_FORMAT,
        class_=class_name(ticket.class_id),
        class_id=ticket.class_id.hex(),
        data=base64.b64encode(ticket.data).decode("ascii"),
    )
    return _encoder.encode(document).decode("ascii") + "\n"


def load_ticket(text: str | bytes) -> Ticket:
    """Parse a ticket file; anything malformed raises ``TicketRejected("format", ...)``."""
    if len(text) > MAX_TICKET_FILE_SIZE:
        raise TicketRejected("format", f"ticket file exceeds {MAX_TICKET_FILE_SIZE} bytes")
    try:
        document = _decoder.decode(text)
    except msgspec.MsgspecError as exc:
        raise TicketRejected("format", f"not a {TICKET_FILE_FORMAT} ticket file: {exc}") from None
    if len(document.class_id) != 64:
        raise TicketRejected("format", "class_id: expected 64 hex characters")
    try:
        class_id = Digest(bytes.fromhex(document.class_id))
    except ValueError:
        raise TicketRejected("format", "class_id: not hexadecimal") from None
    expected = class_name(class_id)
    if document.class_ != expected:
        raise TicketRejected(
            "format", f"class: {document.class_!r} disagrees with class_id (a {expected} ticket)"
        )
    try:
        data = base64.b64decode(document.data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TicketRejected("format", f"data: not base64: {exc}") from None
    if not data:
        raise TicketRejected("format", "data: empty")
    return Ticket(class_id, data)


__all__ = [
    "CLASS_NAMES",
    "MAX_TICKET_FILE_SIZE",
    "OTHER_CLASS",
    "TICKET_FILE_FORMAT",
    "class_name",
    "dump_ticket",
    "load_ticket",
]
