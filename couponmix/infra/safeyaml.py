"""YAML from untrusted files: safe types only, a bounded file size, a bounded nesting depth, no duplicate
keys (YAML would keep the last silently), and a bounded size once aliases are expanded (a few hundred bytes
of nested aliases can otherwise expand to gigabytes of output)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from couponmix.errors import CouponmixError

__all__ = ["load_yaml_file", "MAX_FILE_BYTES", "MAX_NODES", "MAX_DEPTH"]

MAX_FILE_BYTES = 1 << 20
MAX_NODES = 100_000
#: the deepest nesting of lists and mappings accepted (couponmix's own files need fewer than 10 levels)
MAX_DEPTH = 50


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses a document whose aliases expand it beyond ``MAX_NODES`` nodes (counted with
    each alias expanded, as JSON or a report would write it out)."""

    _depth = 0

    def compose_node(self, parent, index):
        """Compose a node, refusing nesting deeper than ``MAX_DEPTH``."""
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise CouponmixError(f"is nested more than {MAX_DEPTH} levels deep (line {mark.line + 1})")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        """Construct a mapping, refusing keys that are not text and keys given twice (merged ``<<`` keys excepted)."""
        seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # << merges: a key it brings may be overridden here
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):  # every key couponmix reads is a name
                raise CouponmixError(
                    f"has the key {str(key)[:60]!r} (line {line}), which is not a name: write keys as text (quote a number)"
                )
            if key in seen:  # a str: hashable
                raise CouponmixError(
                    f"has the key {str(key)[:60]!r} twice (lines {seen[key]} and {line}); YAML would keep the last one silently: keep one"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)

    def compose_document(self):
        """Compose the document, refusing one that expands to more than ``MAX_NODES`` nodes through aliases."""
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
    """The YAML document in ``path``, or a one-line ``CouponmixError`` naming the file and the problem.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    object
        The document (safe YAML types only; None for an empty file).

    Raises
    ------
    CouponmixError
        A missing, unreadable, non-UTF-8 or too large file (over ``MAX_FILE_BYTES``), invalid YAML, nesting deeper
        than ``MAX_DEPTH``, keys that are not text or given twice, or more than ``MAX_NODES`` values once aliases
        are expanded.
    """
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
    except OSError as exc:  # a name too long, a loop of links
        raise CouponmixError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 (a SafeLoader subclass)
    except CouponmixError as exc:
        raise CouponmixError(f"{path} {exc}") from None
    except yaml.YAMLError as exc:
        raise CouponmixError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
