"""YAML from untrusted files: safe types only, a bounded file size, and a bounded size once aliases are
expanded (a few hundred bytes of nested aliases can otherwise expand to gigabytes of output)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from couponmix.errors import CouponmixError

__all__ = ["load_yaml_file", "MAX_FILE_BYTES", "MAX_NODES"]

MAX_FILE_BYTES = 1 << 20
MAX_NODES = 100_000


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses a document whose aliases expand it beyond ``MAX_NODES`` nodes (counted with
    each alias expanded, as JSON or a report would write it out)."""

    def compose_document(self):
        node = super().compose_document()
        try:
            size = _expanded(node, {})
        except RecursionError:
            raise CouponmixError("is nested too deeply") from None
        if size > MAX_NODES:
            raise CouponmixError(f"expands to more than {MAX_NODES:,} values through YAML aliases (&anchor / *alias); write the values out")
        return node


def _expanded(node, memo: dict) -> int:
    """Nodes in the document with every alias written out (shared nodes counted once per use)."""
    if node is None:
        return 0
    key = id(node)
    if key not in memo:
        if isinstance(node, yaml.SequenceNode):
            memo[key] = 1 + sum(_expanded(c, memo) for c in node.value)
        elif isinstance(node, yaml.MappingNode):
            memo[key] = 1 + sum(_expanded(k, memo) + _expanded(v, memo) for k, v in node.value)
        else:
            memo[key] = 1
    return memo[key]


def load_yaml_file(path) -> Any:
    """The YAML document in ``path``, or a one-line ``CouponmixError`` naming the file and the problem."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise CouponmixError(f"{path} is larger than {MAX_FILE_BYTES:,} bytes")
        text = path.read_text()
    except FileNotFoundError:
        raise CouponmixError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise CouponmixError(f"config file {path} is a directory (use `couponmix batch` for a folder)") from None
    except UnicodeDecodeError:
        raise CouponmixError(f"config file {path} is not UTF-8 text") from None
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 (a SafeLoader subclass)
    except CouponmixError as exc:
        raise CouponmixError(f"{path} {exc}") from None
    except yaml.YAMLError as exc:
        raise CouponmixError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
