"""Progress bars on a terminal, silence under CI or when output is redirected."""

from __future__ import annotations

import os
import sys

__all__ = ["interactive", "Progress"]


def interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


class Progress:
    """A tqdm bar on stderr when interactive, otherwise nothing. Use as a context manager."""

    def __init__(self, total: int, desc: str, quiet: bool = False):
        self._bar = None
        if not quiet and interactive():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=False)

    def update_to(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(done - self._bar.n)

    def set_total(self, total: int) -> None:
        """The number of steps, once known (e.g. after a scenario is built)."""
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def phase(self, done: int, desc: str) -> None:
        """Name the phase now running (``done`` phases finished): for work made of a few long steps."""
        if self._bar is not None:
            self._bar.update(done - self._bar.n)
            self._bar.set_description(desc)  # shown at once: a phase may take minutes

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.close()
