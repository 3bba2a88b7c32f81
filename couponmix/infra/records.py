"""Typed results that serialise to JSON: a dataclass deriving from ``Record`` writes itself as a JSON object
in field order (``to_dict``) and reads itself back (``from_dict``), rebuilding nested records from its type
hints. summary.json's blocks and the criterion's per-target errors are records.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = ["OPTIONAL", "Record", "json_key", "optional_unless", "plain"]

#: field metadata: left out of the JSON when None (optional blocks)
OPTIONAL: Mapping[str, Any] = MappingProxyType({"optional": True})


def optional_unless(flag: str) -> Mapping[str, Any]:
    """Field metadata: left out of the JSON when None, unless the record's boolean field ``flag`` is true
    (then written, as null if None).

    Parameters
    ----------
    flag : str
        The name of a boolean field of the same record.

    Returns
    -------
    Mapping
        Metadata for ``dataclasses.field`` (read only).
    """
    return MappingProxyType({"optional": True, "unless": flag})


def json_key(key: str, **metadata) -> Mapping[str, Any]:
    """Field metadata: the field's key in the JSON where it differs from its name (a Python keyword).

    Parameters
    ----------
    key : str
        The JSON key.
    **metadata
        More metadata (e.g. ``OPTIONAL``'s).

    Returns
    -------
    Mapping
        Metadata for ``dataclasses.field`` (read only).
    """
    return MappingProxyType({"key": key, **metadata})


def plain(v: Any) -> Any:
    """``v`` as JSON-ready values: records by ``to_dict``, dicts, lists and tuples element by element (tuples become
    lists), numpy arrays as nested lists, numpy scalars as Python numbers; anything else as it is.

    Parameters
    ----------
    v : object

    Returns
    -------
    object
    """
    if isinstance(v, Record):
        return v.to_dict()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, (np.floating, np.integer, np.bool_)):
        return v.item()
    return v


def _record_type(t: Any) -> type[Record] | None:
    return t if isinstance(t, type) and issubclass(t, Record) else None


def _typed(t: Any, v: Any) -> Any:
    """``v`` (from JSON) as type ``t``: records are rebuilt, as are mappings and lists of records; arrays are
    numpy arrays again."""
    if v is None:
        return None
    if t is np.ndarray:
        return np.asarray(v)
    rec = _record_type(t)
    if rec is not None:
        return rec.from_dict(v)
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        inner = [a for a in args if a is not type(None)]
        return _typed(inner[0], v) if len(inner) == 1 else v
    if origin is dict and len(args) == 2 and _record_type(args[1]) is not None:
        return {k: _typed(args[1], x) for k, x in v.items()}
    if origin is list and args and _record_type(args[0]) is not None:
        return [_typed(args[0], x) for x in v]
    return v


class Record:
    """A dataclass that serialises to a JSON object in field order (optional fields left out when None)."""

    def to_dict(self) -> dict:
        """The record as a JSON object in field order: nested records and numpy scalars made plain, optional fields left
        out when None (unless their ``unless`` flag is true), keys renamed by ``json_key``."""
        out = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if v is None and f.metadata.get("optional") and not getattr(self, f.metadata.get("unless", ""), False):
                continue
            out[f.metadata.get("key", f.name)] = plain(v)
        return out

    @classmethod
    def from_dict(cls, d: dict):
        """The record ``to_dict`` wrote, nested records rebuilt from the type hints; missing optional keys are None, and
        a missing key whose field has no ``default`` raises ``ValueError``.

        Parameters
        ----------
        d : dict
            A JSON object, as ``to_dict`` writes it.

        Returns
        -------
        Record
            An instance of ``cls``.

        Raises
        ------
        ValueError
            Not a mapping, or a required key missing (here or in a nested record).
        """
        if not isinstance(d, dict):
            raise ValueError(f"{cls.__name__}: expected a JSON object, got {type(d).__name__}")
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            key = f.metadata.get("key", f.name)
            if key in d:
                kwargs[f.name] = _typed(hints[f.name], d[key])
            elif f.metadata.get("optional"):
                kwargs[f.name] = None
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ValueError(f"{cls.__name__}: the key {key!r} is missing")
        return cls(**kwargs)
