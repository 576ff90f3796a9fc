"""Lazy re-exports for package facades (PEP 562).

A package's ``__init__`` re-exports its public names, but importing one sans-I/O core (say
``node.groups.raft.core``) runs every ``__init__`` above it. Names whose modules pull in
asyncio, sockets, aioquic or sqlite3 are therefore resolved on first attribute access::

    import typing

    from node._lazy import lazy as _lazy

    if typing.TYPE_CHECKING:
        from node.network import Network
    else:
        __getattr__, __dir__ = _lazy(__name__, {"node.network": ("Network",)})

mypy reads the ``TYPE_CHECKING`` imports; at run time ``node.Network`` imports
``node.network`` once and caches the class on the package. (``typing.TYPE_CHECKING`` and the
``_lazy`` alias keep the package's public namespace to its exports.)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy(
    package: str, exports: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` for ``package``; ``exports`` maps a module to the
    names it provides."""
    origin = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = origin.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(origin))

    return __getattr__, __dir__
