"""Rerun every command example in README.md and docs/*.md and check its output, or rewrite it.

An example is a fenced block marked ``console``: each line that starts with ``$ `` is a command (a trailing
backslash continues it), and the lines after it, up to the next command, are its output (stdout and stderr
as a terminal shows them, with progress bars off). An output line that ends with `` ...`` stands for any
line that starts with the text before it (long warnings are shortened that way).

Each file's examples run in order in one fresh folder, so that a command may use what an earlier one wrote.
In that folder ``reports/examples/studies`` and ``simulators`` point to the repository's, and the
``couponmix`` command is the virtual environment's.

Usage::

    python docs/examples.py            # check: exit 1 and show the differences when an output changed
    python docs/examples.py --update   # rewrite the outputs in place
    python docs/examples.py --list     # the commands, without running them
    python docs/examples.py README.md  # only some files
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```console\s*$")
ELIDED = " ..."


@dataclass
class Example:
    """One command of a ``console`` block: where its output lines sit in the file, and what they say."""

    command: str
    first: int  # index of the first output line in the file's lines
    expected: list[str] = field(default_factory=list)


def examples(lines: list[str]) -> list[Example]:
    """Every command of every ``console`` block of a markdown file, in order."""
    out: list[Example] = []
    i = 0
    while i < len(lines):
        if not FENCE.match(lines[i]):
            i += 1
            continue
        i += 1
        current: Example | None = None
        while i < len(lines) and not lines[i].startswith("```"):
            line = lines[i]
            if line.startswith("$ "):
                cmd = line[2:]
                while cmd.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    cmd = cmd[:-1] + " " + lines[i].strip()
                current = Example(cmd.strip(), i + 1)
                out.append(current)
            elif current is not None:
                current.expected.append(line)
            i += 1
        i += 1
    return out


def matches(expected: str, actual: str) -> bool:
    if expected.endswith(ELIDED):
        return actual.startswith(expected[: -len(ELIDED)])
    return expected == actual


def agrees(expected: list[str], actual: list[str]) -> bool:
    return len(expected) == len(actual) and all(matches(e, a) for e, a in zip(expected, actual))


def kept(expected: list[str], actual: list[str]) -> list[str]:
    """The new output, keeping the shortened form of lines whose beginning did not change."""
    if len(expected) != len(actual):
        return actual
    return [e if e.endswith(ELIDED) and matches(e, a) else a for e, a in zip(expected, actual)]


def sandbox(tmp: Path) -> None:
    (tmp / "reports" / "examples").mkdir(parents=True)
    (tmp / "reports" / "examples" / "studies").symlink_to(ROOT / "reports" / "examples" / "studies")
    (tmp / "simulators").symlink_to(ROOT / "simulators")


def run(command: str, cwd: Path) -> list[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CI": "1", "COLUMNS": "100"}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(command, shell=True, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    text = done.stdout.rstrip("\n")
    return text.split("\n") if text else []


def check_file(path: Path, update: bool) -> int:
    lines = path.read_text().split("\n")
    found = examples(lines)
    if not found:
        return 0
    changed = 0
    replacements: list[tuple[Example, list[str]]] = []
    with tempfile.TemporaryDirectory(prefix="couponmix-examples-") as tmp:
        sandbox(Path(tmp))
        for ex in found:
            print(f"{path.name}: $ {ex.command}", file=sys.stderr, flush=True)
            actual = run(ex.command, Path(tmp))
            if not agrees(ex.expected, actual):
                changed += 1
                if update:
                    replacements.append((ex, kept(ex.expected, actual)))
                else:
                    sys.stdout.writelines(d + "\n" for d in difflib.unified_diff(ex.expected, actual, "README/docs", "rerun", lineterm=""))
    if update and replacements:
        for ex, new in reversed(replacements):  # from the end, so earlier positions stay valid
            lines[ex.first : ex.first + len(ex.expected)] = new
        path.write_text("\n".join(lines))
    return changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="*", help="markdown files (default: README.md and docs/*.md)")
    ap.add_argument("--update", action="store_true", help="rewrite the outputs that changed")
    ap.add_argument("--list", action="store_true", help="list the commands only")
    args = ap.parse_args(argv)
    files = [Path(f).resolve() for f in args.files] or [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    if args.list:
        for f in files:
            for ex in examples(f.read_text().split("\n")):
                print(f"{f.name}: $ {ex.command}")
        return 0
    changed = sum(check_file(f, args.update) for f in files)
    if changed and not args.update:
        print(f"{changed} example(s) no longer give the output shown; rerun with --update", file=sys.stderr)
        return 1
    if changed:
        print(f"updated {changed} example(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
