"""Tickets: opaque credentials a peer carries in its signed entry."""

from __future__ import annotations

import msgspec

from node.primitives.digest import Digest


class Ticket(msgspec.Struct, frozen=True):
    """A credential of some class (JWT, TDX, ...); validators of that class interpret ``data``."""

    class_id: Digest
    data: bytes

    def id(self) -> Digest:
        """Content address of the ticket: the key under which a peer entry stores it."""
        return self.class_id.derive(self.data)
