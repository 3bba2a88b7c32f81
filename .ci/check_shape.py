"""The shape check (``make lint``): no function or method in couponmix is 80 lines or longer (its signature,
docstring and body), so that each does one thing a reader can hold. Exit 1 naming each one; 0 when none is.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

LIMIT = 80
ROOT = Path(__file__).resolve().parents[1] / "couponmix"


def too_long(root: Path = ROOT, limit: int = LIMIT) -> list[str]:
    out = []
    for file in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines >= limit:
                    out.append(f"{file}:{node.lineno}: {node.name} is {lines} lines (the limit is under {limit})")
    return out


def main() -> int:
    found = too_long()
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
