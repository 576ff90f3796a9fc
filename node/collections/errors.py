"""Errors of the collections subsystem.

    MosaikError
    ├── ConfigError              (node.errors) a bad type parameter, store name or option
    └── CollectionError          base of every collections error
        ├── InvalidValue         a written value that is not of the collection's declared type,
        │                        or a key/item that cannot be hashed (our fault, never sent)
        ├── StoreConflict        this node already has the store open in an incompatible way
        │                        (a reader replica when a writer is asked for, other tickets)
        └── CollectionClosed     the handle, its collections or its network was closed

Errors of the group a collection runs on (offline, terminated) pass through unchanged: they
are the groups package's own ``MosaikError`` subclasses.
"""

from __future__ import annotations

from node.errors import MosaikError


class CollectionError(MosaikError):
    """Base of every error the collections subsystem raises."""


class InvalidValue(CollectionError):
    """A value, key or item that does not match the collection's declared types."""


class StoreConflict(CollectionError):
    """The store is already open on this node in a way the request cannot share."""


class CollectionClosed(CollectionError):
    """The handle, the ``Collections`` it came from, or the network was closed."""
