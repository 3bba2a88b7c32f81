"""The import-layer check (``make lint``): couponmix's folders form layers, and a module may import only from
its own layer or the layers below it, at module level and inside functions alike, so that no folder-level
cycle can exist and no import inside a function merely dodges one. The core never imports ``simulators``.

    couponmix (the package root: its version) < errors < infra < policy < dataset < ope < decide < studies
    < outputs < commands < cli < entry, __main__

Exit 1 with one line per upward import; 0 when there is none.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

LAYERS = ["", "errors", "infra", "policy", "dataset", "ope", "decide", "studies", "outputs", "commands", "cli", "entry", "__main__"]
ROOT = Path(__file__).resolve().parents[1] / "couponmix"


def layer_of(module: str) -> str | None:
    """The layer of a dotted module name inside couponmix ('' for the package root), None outside it."""
    parts = module.split(".")
    if parts[0] != "couponmix":
        return None
    return parts[1] if len(parts) > 1 and parts[1] != "__init__" else ""


def imported(node: ast.AST, package: str) -> list[str]:
    """The modules an import statement names (relative imports resolved against ``package``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            return [".".join(base + ([node.module] if node.module else []))]
        return [node.module] if node.module else []
    return []


def violations(root: Path = ROOT) -> list[str]:
    out = []
    for file in sorted(root.rglob("*.py")):
        rel = file.relative_to(root.parent).with_suffix("")
        module = ".".join(rel.parts)
        package = module if file.name == "__init__.py" else module.rsplit(".", 1)[0]
        mine = layer_of(module.removesuffix(".__init__"))
        if mine not in LAYERS:
            out.append(f"{file}: folder {mine!r} has no place in the layers ({' < '.join(x or 'couponmix' for x in LAYERS)})")
            continue
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            for name in imported(node, package):
                if name.split(".")[0] == "simulators":
                    out.append(f"{file}:{node.lineno}: imports {name}: the core never imports the simulators")
                theirs = layer_of(name)
                if theirs is None or theirs == mine:
                    continue
                if theirs not in LAYERS or LAYERS.index(theirs) > LAYERS.index(mine):
                    out.append(f"{file}:{node.lineno}: {mine or 'couponmix'} imports {name}, a layer above it")
    return out


def main() -> int:
    found = violations()
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
