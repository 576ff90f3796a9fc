"""Type parameters of collections: canonical names for group signatures, hashability checks.

A collection's group signature is derived from the names of its type parameters, so members
whose types could not decode each other's commands never join the same group. Names are
structural and independent of the module a type lives in (a script run as ``__main__`` and
the same code imported as a module agree): a class is named by its qualified name, a
``msgspec.Struct`` also by its fields, an ``Enum`` by its members, generic aliases and unions
by their parts.
"""

from __future__ import annotations

import enum
import types
import typing
from typing import Any

import msgspec

from node.errors import ConfigError

_UNHASHABLE = (list, dict, set, bytearray)


def type_name(tp: Any) -> str:
    """The canonical, structural name of ``tp``."""
    return _name(tp, set())


def _name(tp: Any, seen: set[Any]) -> str:
    if tp is None or tp is type(None):
        return "None"
    if tp is Any or isinstance(tp, typing.TypeVar):
        return "Any"
    if tp is Ellipsis:
        return "..."
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return _name(args[0], seen)
    if origin is typing.Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(_name(a, seen) for a in args)
    if origin is not None:
        return f"{_name(origin, seen)}[{', '.join(_name(a, seen) for a in args)}]"
    if not isinstance(tp, type):
        return repr(tp)
    name = tp.__qualname__
    if tp in seen:
        return name
    if issubclass(tp, msgspec.Struct):
        seen.add(tp)
        fields = ", ".join(
            f"{f.encode_name}: {_name(f.type, seen)}" for f in msgspec.structs.fields(tp)
        )
        seen.discard(tp)
        return f"{name}{{{fields}}}"
    if issubclass(tp, enum.Enum):
        members = ", ".join(f"{m.name}={m.value!r}" for m in tp)
        return f"{name}{{{members}}}"
    return name


def check_hashable_type(tp: Any, what: str) -> None:
    """Reject types whose decoded values cannot be dict keys or set items.

    ``what`` names the parameter in the error (``"key"``, ``"item"``, ``"priority"``).
    """
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        check_hashable_type(typing.get_args(tp)[0], what)
        return
    if origin is typing.Union or origin is types.UnionType or origin is tuple:
        for arg in typing.get_args(tp):
            if arg is not Ellipsis:
                check_hashable_type(arg, what)
        return
    base = origin if origin is not None else tp
    if isinstance(base, type):
        if issubclass(base, _UNHASHABLE):
            raise ConfigError(
                f"{what} type {type_name(tp)} is not hashable: use tuple or frozenset instead"
            )
        if issubclass(base, msgspec.Struct) and not base.__struct_config__.frozen:
            raise ConfigError(
                f"{what} type {type_name(tp)} is not hashable: declare the Struct frozen=True"
            )
