"""Declarative checks of configuration files (pydantic v2), with one-line errors.

A schema is a ``Schema`` subclass: each key's type, range and meaning (``Field(description=...)``) in one
place, unknown keys refused. ``parse(schema, data, where)`` returns the checked model or raises a
``CouponmixError`` whose message is one line, ``where: path.to.key: expected X, got Y``. Numbers written
as strings that parse as numbers are accepted (PyYAML reads ``1.0e9`` as a string); booleans are not
numbers, NaN and infinities are refused. ``describe(schema)`` lists every key with its type and meaning,
for documentation.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from couponmix.errors import CouponmixError

__all__ = ["Schema", "Number", "Int", "NonNegative", "Share", "Positive", "PositiveInt", "PositiveReal", "parse", "describe"]


def _not_bool(v: Any) -> Any:
    if isinstance(v, bool):
        raise ValueError("expected a number, got a boolean")
    return v


def _whole(v: Any) -> Any:
    """1e5, 100000.0 and '1.0e5' are whole numbers too (YAML reads 1.0e5 as text)."""
    v = _not_bool(v)
    if isinstance(v, str):
        try:
            v = float(v.strip())
        except ValueError:
            return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


#: a finite number (numeric strings accepted, booleans refused)
Number = Annotated[float, BeforeValidator(_not_bool)]
Int = Annotated[int, BeforeValidator(_whole)]
NonNegative = Annotated[float, BeforeValidator(_not_bool), Field(ge=0)]
Positive = Annotated[float, BeforeValidator(_not_bool), Field(gt=0)]
Share = Annotated[float, BeforeValidator(_not_bool), Field(ge=0, le=1)]
PositiveInt = Annotated[int, BeforeValidator(_whole), Field(ge=1)]
#: a positive number that keeps its written type (5000 stays an int, so echoes of a study file read as written)
PositiveReal = Annotated[int | float, BeforeValidator(_not_bool), Field(gt=0)]


class Schema(BaseModel):
    """Base of couponmix's config schemas: unknown keys refused, no NaN or infinity, assignments checked."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=True)


S = TypeVar("S", bound=BaseModel)

_EXPECTED = {
    "float_parsing": "a number",
    "float_type": "a number",
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "finite_number": "a finite number",
    "string_type": "text",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "missing": "a value (the key is missing)",
    "extra_forbidden": "no such key",
}


def _path(loc: tuple) -> str:
    return ".".join(str(p) for p in loc if not (isinstance(p, str) and p.startswith("function-")))


def _message(err: dict) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[kind]
        bound = next(iter(ctx.values()), "")
        return f"expected a number {op} {bound}, got {err.get('input')!r}"
    if kind == "literal_error":
        return f"expected {ctx.get('expected', 'one of the allowed values')}, got {err.get('input')!r}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"])).removeprefix("Value error, ")
    if kind in ("too_short", "too_long"):
        return err["msg"].lower()
    expected = _EXPECTED.get(kind)
    if expected is None:
        return err["msg"][0].lower() + err["msg"][1:]
    if kind == "missing":
        return "missing"
    return f"expected {expected}, got {err.get('input')!r}"


def parse(schema: type[S], data: Any, where: str = "config") -> S:
    """``data`` checked against ``schema``; the first problem becomes a one-line ``CouponmixError``.

    Parameters
    ----------
    schema : type of BaseModel
    data : object
        A mapping, usually from YAML (None: empty).
    where : str
        Where the data came from, for the message (e.g. a file's path).

    Returns
    -------
    BaseModel
        An instance of ``schema``.

    Raises
    ------
    CouponmixError
        The first problem, in one line (with the number of others).
    """
    try:
        return schema.model_validate(data if data is not None else {})
    except ValidationError as exc:
        err = exc.errors()[0]
        path = _path(err["loc"])
        more = exc.error_count() - 1
        tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise CouponmixError(f"{where}: {path + ': ' if path else ''}{_message(dict(err))}{tail}") from None


def describe(schema: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str]]:
    """(key path, type, meaning) of every key of ``schema``, nested schemas expanded.

    Parameters
    ----------
    schema : type of BaseModel
    prefix : str
        Put before every key path (the parent's path and a dot, for nested schemas).

    Returns
    -------
    list of (str, str, str)
    """
    out = []
    for name, f in schema.model_fields.items():
        ann = f.annotation
        sub = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        out.append((prefix + name, getattr(ann, "__name__", str(ann)).replace("typing.", ""), f.description or ""))
        if sub is not None:
            out += describe(sub, prefix + name + ".")
    return out
