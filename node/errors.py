"""The root of the runtime's exception tree, and the primitives' errors.

    MosaikError
    ├── ConfigError            bad user input: a key file, an address, an option
    ├── CodecError             bytes that are not a valid frame or message
    │   ├── FrameTooLarge      a frame above the negotiated maximum
    │   └── DecodeError        a body that does not decode to the expected type
    └── ...                    each layer's own tree: ``node.transport.errors``
                               (TransportError), ``node.discovery.errors``,
                               ``node.streams.errors``, ``node.groups.errors``,
                               ``node.groups.raft.errors``, ``node.collections.errors``,
                               ``node.tickets.errors``

Every layer derives its errors from ``MosaikError`` and translates foreign errors (aioquic,
cryptography, the OS) at its boundary; nothing foreign escapes the public API.
"""

from __future__ import annotations


class MosaikError(Exception):
    """Base of every error the runtime raises."""


class ConfigError(MosaikError):
    """Invalid user input: names the option or file and what is wrong with it."""


class CodecError(MosaikError):
    """Bytes that are not a valid frame or message."""


class FrameTooLarge(CodecError):
    """A frame whose declared length exceeds the maximum."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the maximum of {limit} bytes")
        self.size = size
        self.limit = limit


class DecodeError(CodecError):
    """A frame body that is not a valid encoding of the expected type."""
